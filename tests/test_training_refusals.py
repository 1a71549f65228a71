"""Training refuses what cannot work, before it trains: a pair method without pairs, numbers that
are not finite (named with the file and row, found at load), a truncated or corrupt embeddings file
(named as such, never as an interrupt)."""

from __future__ import annotations

import gzip
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cfpairs.check import verify_store
from cfpairs.store import StoreWriter
from cftrain.methods import METHODS
from tests.helpers import QUICK, VOCAB, cli_main, ok, refused, text_columns

PAIR_METHODS = [name for name, m in METHODS.items() if m.needs_pairs]


def unpaired_store(path):
    """A text store whose splits hold examples of two labels but no pair."""
    with StoreWriter(path, task="t", input_kind="text", label_kind="binary", class_names=["a", "b"], build={},
                     sources=[]) as writer:
        writer.write_vocab(VOCAB)
        for name in ("train", "val"):
            words = [("good film", "bad film")[i % 2] for i in range(20)]
            writer.write_split(name, {"id": [f"{name}{i}" for i in range(20)], "is_counterfactual": np.zeros(20, bool),
                                      "label": np.arange(20) % 2, **text_columns("", words)})
    return path


@pytest.mark.parametrize("mode", PAIR_METHODS)
def test_a_pair_method_without_pairs_is_refused(tmp_path, mode):
    store = unpaired_store(tmp_path / "s.h5")
    refused("cftrain", ["run", store, "--out", tmp_path / "r", "--mode", mode, *QUICK], f"--mode {mode}",
            "has no pairs", "use --mode augmented", out=tmp_path / "r")
    refused("cftrain", ["table", store, "--out", tmp_path / "t", "--modes", f"augmented,{mode}", *QUICK],
            f"--mode {mode}", "has no pairs", out=tmp_path / "t")


def test_a_default_table_without_pairs_leaves_the_pair_rows_out_and_says_so(tmp_path):
    store = unpaired_store(tmp_path / "s.h5")
    result = CliRunner().invoke(cli_main("cftrain"), ["table", str(store), "--out", str(tmp_path / "t"), *QUICK])
    assert result.exit_code == 0, result.stderr
    assert "split train has no pairs: the table leaves out " + ", ".join(PAIR_METHODS) in result.stderr
    assert not any((tmp_path / "t" / mode).exists() for mode in PAIR_METHODS)
    assert (tmp_path / "t" / "augmented" / "metrics.json").is_file()


def test_non_finite_inputs_are_named_with_file_and_row(work, tmp_path):
    shutil.copy(work / "toy.h5", tmp_path / "nan.h5")
    with h5py.File(tmp_path / "nan.h5", "r+") as h5:
        h5["train/examples/x"][7, 0] = np.nan  # checksums rewritten: only the values are wrong
    fragment = "/train/examples/x: row 7 (id "
    assert fragment in verify_store(tmp_path / "nan.h5")
    line = refused("cftrain", ["run", tmp_path / "nan.h5", "--out", tmp_path / "r"], str(tmp_path / "nan.h5"),
                   fragment, "is not finite", out=tmp_path / "r")
    assert "diverged" not in line


def test_a_store_writer_refuses_non_finite_inputs(tmp_path):
    from cfpairs.errors import StoreError
    with pytest.raises(StoreError, match="row 1 .* is not finite"):
        with StoreWriter(tmp_path / "s.h5", task="t", input_kind="vector", label_kind="binary",
                         class_names=["a", "b"], build={}, sources=[]) as writer:
            writer.write_split("train", {"id": ["a", "b"], "is_counterfactual": [False, True], "label": [0, 1],
                                         "x": np.array([[0.0], [np.inf]], np.float32)}, [[0, 1]], ["edited"])
    assert not (tmp_path / "s.h5").exists()


def test_non_finite_region_features_are_named_as_they_are_read(stores, tmp_path):
    from cfpairs import open_store
    from cfpairs.errors import StoreError
    from cfpairs.store import RegionFeatureReader
    shutil.copy(stores["regions"], tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r+") as h5:
        h5["regions/features"][3, 0, 0] = np.inf
    with open_store(tmp_path / "r.h5") as store:
        reader = RegionFeatureReader(store.path, store.feature_parts())
        assert reader.read(np.array([1, 2])).shape[0] == 2
        with pytest.raises(StoreError, match="/regions/features row 3 is not finite"):
            reader.read(np.array([1, 3, 2]))


def vectors_args(stores, tmp_path, path):
    return ["run", stores["text_pair"], "--out", tmp_path / "r", "--mode", "augmented", "--embeddings", path, *QUICK]


def test_a_non_finite_word_vector_is_named(stores, tmp_path):
    (tmp_path / "v.txt").write_text("good 0.1 0.2\nfilm nan 0.3\nbad 0.0 1.0\n")
    refused("cftrain", vectors_args(stores, tmp_path, tmp_path / "v.txt"), "v.txt: line 2: the vector of 'film' is "
            "not finite", out=tmp_path / "r")


def test_a_truncated_gz_is_named_as_such_never_as_an_interrupt(stores, tmp_path):
    data = gzip.compress("".join(f"w{i} {i}.0 {i}.5\n" for i in range(5000)).encode() + b"good 1.0 2.0\n")
    (tmp_path / "v.txt.gz").write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(cli_main("cftrain"), [str(a) for a in vectors_args(stores, tmp_path,
                                                                                      tmp_path / "v.txt.gz")])
    assert result.exit_code == 2 and "interrupted" not in result.stderr
    assert "v.txt.gz: truncated or corrupt after line" in result.stderr and "EOFError" in result.stderr
    (tmp_path / "bad.txt.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    refused("cftrain", vectors_args(stores, tmp_path, tmp_path / "bad.txt.gz"), "bad.txt.gz: truncated or corrupt")
    ok("cftrain", vectors_args(stores, tmp_path, _whole(tmp_path, data)))


def _whole(tmp_path, data):
    (tmp_path / "whole.txt.gz").write_bytes(data)
    return tmp_path / "whole.txt.gz"
