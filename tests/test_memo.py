"""A store of this process's, unchanged, is walked and checked once (`cfpairs.memo`); changed in
place or replaced, or under other check settings, it is checked again (linked feature files, each
time: tests/test_structure.py changes one between two verifies)."""

from __future__ import annotations

import shutil

import h5py
import pytest

import cfpairs.check
from cfpairs import memo
from cfpairs.check import check_store
from cfpairs.errors import StoreError
from cfpairs.store import Store


@pytest.fixture
def counted(monkeypatch):
    """Calls of the check's and the walk's real work."""
    import cfpairs.structure
    calls = {"check": 0, "walk": 0}
    real_check, real_walk = cfpairs.check._check_store, cfpairs.structure.walk

    def check(*args):
        calls["check"] += 1
        return real_check(*args)

    def walk(*args):
        calls["walk"] += 1
        return real_walk(*args)
    monkeypatch.setattr(cfpairs.check, "_check_store", check)
    monkeypatch.setattr(cfpairs.structure, "walk", walk)
    memo.forget()
    yield calls
    memo.forget()


def test_an_unchanged_store_is_checked_once(work, tmp_path, counted):
    path = shutil.copy(work / "toy.h5", tmp_path / "toy.h5")
    first = check_store(path, digest=True)
    assert check_store(path, digest=True) == first and counted["check"] == 1
    with Store(path) as a, Store(path) as b:
        assert a.layout == b.layout
    assert counted["walk"] == 1  # the check's walk serves both opens


def test_a_store_damaged_in_place_is_checked_again(work, tmp_path, counted):
    path = shutil.copy(work / "toy.h5", tmp_path / "toy.h5")
    check_store(path, digest=True)
    with h5py.File(path, "r+") as h5:  # the same size, other values: the digest no longer matches
        h5["train/examples/x"][0, 0] += 1.0
    with pytest.raises(StoreError, match="content_digest mismatch"):
        check_store(path, digest=True)
    assert counted["check"] == 2


def test_a_replaced_store_is_a_new_version(work, tmp_path, counted):
    path = shutil.copy(work / "toy.h5", tmp_path / "toy.h5")
    check_store(path)
    shutil.copy(work / "text.h5", tmp_path / "other.h5")
    shutil.move(tmp_path / "other.h5", path)
    check_store(path)
    assert counted["check"] == 2


def test_other_settings_check_again(work, tmp_path, counted, monkeypatch):
    path = shutil.copy(work / "toy.h5", tmp_path / "toy.h5")
    check_store(path)
    monkeypatch.setenv("CFPAIRS_MAX_EXPANSION", "lots")  # a setting the check refuses: it ran again
    with pytest.raises(StoreError, match="CFPAIRS_MAX_EXPANSION='lots'"):
        check_store(path)
