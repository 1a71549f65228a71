"""Every malformed store is one StoreError (CLI: one line, exit 2; verify: exit 1), never a crash,
and nothing a small file only declares is read: unwritten chunks, missing contiguous bytes and
decompression bombs are refused from the sizes alone, before any data is read."""

from __future__ import annotations

import json
import shutil
import zlib

import h5py
import numpy as np
import pytest

from cfpairs import open_store
from cfpairs.errors import StoreError
from tests.helpers import refused, run_cli, write_store


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("malformed") / "base.h5"
    write_store(path, "text")
    return path


def replace(h5, where, **create):
    group, _, name = where.rpartition("/")
    del h5[where]
    h5[group].create_dataset(name, **create)


CASES = {
    "non-UTF-8 attribute": (lambda h5: h5.attrs.__setitem__("task", np.bytes_(b"\xff\xfeabc")),
                            "attribute 'task' of / is not UTF-8 text"),
    "null dataspace": (lambda h5: replace(h5, "train/examples/id", data=h5py.Empty("S10")),
                       "/train/examples/id has no dataspace"),
    "duplicate class names": (lambda h5: h5.attrs.__setitem__("class_names", json.dumps(["a", "a"])),
                              "names 'a' twice"),
    "binary with many classes": (lambda h5: h5.attrs.__setitem__("class_names",
                                                                   json.dumps([f"c{i}" for i in range(10 ** 5)])),
                                 "a binary store has 2 class names, this one 100,000"),
    "deep JSON": (lambda h5: h5.attrs.__setitem__("build", "[" * 50000 + "]" * 50000), "nested too deeply"),
    "unwritten chunks": (lambda h5: replace(h5, "train/examples/length", shape=(2 ** 38,), dtype="i4",
                                            chunks=(1024,)), "stores 0 of its 268,435,456 chunks"),
    "contiguous bytes missing": (lambda h5: replace(h5, "train/examples/length", shape=(10 ** 6,), dtype="i4"),
                                 "declares 4,000,000 bytes and the file holds 0"),
    "a dataset where a group belongs": (lambda h5: (h5["train"].__delitem__("pairs"),
                                                    h5["train"].create_dataset("pairs", data=np.zeros(3))),
                                        "/train/pairs/index cannot be opened"),
    "labels out of range": (lambda h5: h5["train/examples/label"].__setitem__(0, 7), "values outside [0, 2)"),
    "labels of another type": (lambda h5: replace(h5, "train/examples/label",
                                                  data=np.zeros(h5["train/examples/label"].shape, "f4")),
                               "expected (N,) integers"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_store_is_one_store_error_everywhere(base, tmp_path, case):
    mutate, said = CASES[case]
    path = tmp_path / "s.h5"
    shutil.copy(base, path)
    with h5py.File(path, "r+") as h5:
        mutate(h5)
    with pytest.raises(StoreError, match=said.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        with open_store(path) as store:
            store["train"].examples["label"]
    for command in (["inspect", path], ["export", path, "--to", "parquet", tmp_path / "out"]):
        refused("cfbuild", command, said)
    shown = run_cli("cli.cfbuild", "verify", str(path))
    assert shown.returncode == 1 and said in shown.stderr and "Traceback" not in shown.stderr


def bomb(path, chunks: int, chunk_bytes: int = 1 << 20) -> None:
    """A store whose one extra dataset is `chunks` MiB of zeros, each chunk gzip-compressed to ~1 kB
    and written as is (no zeros are ever made in memory)."""
    packed = zlib.compress(bytes(chunk_bytes), 9)
    with h5py.File(path, "r+") as h5:
        ds = h5["train"].create_dataset("zeros", shape=(chunks * chunk_bytes,), dtype="u1", chunks=(chunk_bytes,),
                                        compression="gzip")
        for k in range(chunks):
            ds.id.write_direct_chunk((k * chunk_bytes,), packed)


def test_a_deflate_bomb_is_refused_from_its_sizes(base, tmp_path, monkeypatch):
    path = tmp_path / "bomb.h5"
    shutil.copy(base, path)
    bomb(path, 512)  # 512 MiB declared in a file of under 1 MB
    said = "its datasets declare 536,871,"
    with pytest.raises(StoreError, match=said):
        open_store(path)
    shown = run_cli("cli.cfbuild", "verify", str(path))
    assert shown.returncode == 1 and "times the file's" in shown.stderr and "CFPAIRS_MAX_EXPANSION" in shown.stderr
    monkeypatch.setenv("CFPAIRS_MAX_EXPANSION", "1000000")  # raised for a store one trusts: it opens
    with open_store(path, check=False) as store:
        assert store.splits
    monkeypatch.setenv("CFPAIRS_MAX_EXPANSION", "lots")
    with pytest.raises(StoreError, match="CFPAIRS_MAX_EXPANSION='lots': expected a number"):
        open_store(path)


def test_our_own_stores_are_far_from_the_limit(base, stores):
    """What our builders write: every chunk written, the whole file under 100x its size declared."""
    for path in [base, *stores.values()]:
        with open_store(path) as store:
            assert store["train"].examples["is_counterfactual"].shape[0] > 0
