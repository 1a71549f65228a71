"""The store contract: round trips, writer validation, reader refusals, a plain-h5py reader."""

import json
import os
import shutil

import h5py
import numpy as np
import pytest

from cfpairs.errors import StoreError, UserError
from cfpairs.digest import data_digest
from cfpairs.store import RegionFeatureReader, Store, StoreWriter, content_digest
from tests.helpers import PAIRS, VOCAB, examples_for, write_features_file, write_store

KINDS = ["text", "text_pair", "vector", "regions"]


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_every_input_kind(tmp_path, kind):
    features = write_features_file(tmp_path / "feats.h5")
    written = write_store(tmp_path / "s.h5", kind, features_file=tmp_path / "feats.h5")
    with Store(tmp_path / "s.h5", allow_external=kind == "regions") as store:
        assert (store.task, store.input_kind, store.label_kind) == ("t", kind, "binary")
        assert store.splits == ["train", "val"]
        train = store.split("train")
        for field, value in written.items():
            got = train.read(field)
            assert list(got) == list(value) if got.dtype.kind == "O" else np.array_equal(got, value), field
        assert train.pairs_index[()].tolist() == PAIRS.tolist()
        assert train.pairs_kind.asstr()[()].tolist() == ["edited", "edited"]
        assert train.subsets["hard"][()].tolist() == [1, 3]
        assert store.split("val").pairs_index.shape == (1, 2)
        if kind != "vector":
            assert store.vocab == VOCAB
        if kind == "regions":
            assert np.array_equal(RegionFeatureReader(store.path, store.feature_parts()).read([0, 1]), features)
            assert store.regions["image_id"][()].tolist() == [101, 102]


def test_reader_is_lazy_and_rows_can_be_sliced(tmp_path):
    write_store(tmp_path / "s.h5", "vector")
    with Store(tmp_path / "s.h5") as store:
        split = store.split("train")
        assert isinstance(split.examples["x"], h5py.Dataset)
        assert split.read("x", [2]).tolist() == [[6.0, 7.0, 8.0]]


def test_datasets_are_chunked_and_compressed(tmp_path):
    write_store(tmp_path / "s.h5", "text")
    with h5py.File(tmp_path / "s.h5") as h5:
        for name in ("train/examples/tokens", "train/examples/label", "train/examples/text"):
            assert h5[name].chunks is not None and h5[name].compression == "gzip", name


def _broken(kind, mutate):
    ex = examples_for(kind)
    pairs, kinds = PAIRS.copy(), ["edited", "edited"]
    out = mutate(ex, pairs) or (pairs, kinds)
    return ex, out[0], out[1]


INVALID = {
    "length mismatch": lambda ex, p: ex.update(label=ex["label"][:3]),
    "duplicate id": lambda ex, p: ex.update(id=["a", "b", "a", "c"]),
    "pair out of range": lambda ex, p: (np.array([[0, 1], [2, 9]]), ["edited"] * 2),
    "negative pair row": lambda ex, p: (np.array([[0, -1]]), ["edited"]),
    "pair with same label": lambda ex, p: (np.array([[0, 2]]), ["edited"]),
    "kinds count": lambda ex, p: (PAIRS, ["edited"]),
    "missing field": lambda ex, p: ex.__delitem__("is_counterfactual"),
    "label out of range": lambda ex, p: ex.update(label=np.array([0, 1, 0, 2])),
    "x not float32": lambda ex, p: ex.update(x=ex["x"].astype(np.float64)),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_writer_rejects_invalid_input_and_leaves_no_file(tmp_path, case):
    ex, pairs, kinds = _broken("vector", INVALID[case])
    out = tmp_path / "s.h5"
    with pytest.raises(StoreError):
        with StoreWriter(out, task="t", input_kind="vector", label_kind="binary", class_names=["n", "p"],
                         build={}, sources=[]) as writer:
            writer.write_split("train", ex, pairs, kinds)
    assert os.listdir(tmp_path) == []


def test_writer_rejects_tokens_outside_vocab(tmp_path):
    ex = examples_for("text")
    ex["tokens"][0, 0] = len(VOCAB)
    with pytest.raises(StoreError, match="vocabulary"):
        with StoreWriter(tmp_path / "s.h5", task="t", input_kind="text", label_kind="binary",
                         class_names=["n", "p"], build={}, sources=[]) as writer:
            writer.write_vocab(VOCAB)
            writer.write_split("train", ex, PAIRS, ["edited"] * 2)


def test_soft_labels_equal_maps_are_refused_as_pairs(tmp_path):
    ex = {"id": ["a", "b", "c"], "is_counterfactual": np.array([False, True, True]), "x": np.zeros((3, 2), np.float32),
          "label_index": np.array([[2, 0], [0, 2], [-1, -1]], np.int32),
          "label_score": np.array([[1.0, 0.3], [0.3, 1.0], [0, 0]], np.float32)}
    kw = dict(task="t", input_kind="vector", label_kind="soft", class_names=["a", "b", "c"], build={}, sources=[])
    with pytest.raises(StoreError, match="same label"):  # same {answer: score} map in another order
        with StoreWriter(tmp_path / "s.h5", **kw) as writer:
            writer.write_split("train", ex, [[0, 1]], ["masked_relevant"])
    with StoreWriter(tmp_path / "s.h5", **kw) as writer:  # original vs empty target: allowed
        writer.write_split("train", ex, [[0, 2]], ["masked_relevant"])


def test_existing_output_needs_force(tmp_path):
    write_store(tmp_path / "s.h5")
    with pytest.raises(UserError, match="already exists"):
        write_store(tmp_path / "s.h5")
    with Store(tmp_path / "s.h5") as store:
        before, data_before = store.digest, data_digest(store.h5)
    write_store(tmp_path / "s.h5", task="other", force=True)
    with Store(tmp_path / "s.h5") as store:
        assert store.task == "other" and data_digest(store.h5) == data_before
        assert store.digest != before  # format 2: the digest covers the attributes too


def test_reader_refuses_non_cfpairs_and_future_versions(tmp_path):
    with h5py.File(tmp_path / "plain.h5", "w") as h5:
        h5["x"] = [1, 2]
    with pytest.raises(StoreError, match="not a cfpairs store"):
        Store(tmp_path / "plain.h5")
    write_store(tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5", "a") as h5:
        h5.attrs["format_version"] = 4
    with pytest.raises(StoreError, match="format_version 4 is not supported"):
        Store(tmp_path / "s.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(StoreError, match="cannot open as HDF5"):
        Store(tmp_path / "junk.h5")


def test_digest_is_recomputable_and_changes_with_content(tmp_path):
    write_store(tmp_path / "a.h5")
    write_store(tmp_path / "b.h5")
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5", "a") as b:
        assert a.attrs["content_digest"] == b.attrs["content_digest"] == content_digest(a)
        b["train/examples/x"][0, 0] = 99.0
        assert content_digest(b) != a.attrs["content_digest"]


def test_external_link_survives_moving_store_and_features_together(tmp_path):
    (tmp_path / "a").mkdir()
    features = write_features_file(tmp_path / "a" / "feats.h5")
    write_store(tmp_path / "a" / "s.h5", "regions", features_file=tmp_path / "a" / "feats.h5")
    shutil.move(tmp_path / "a", tmp_path / "b")
    cwd = os.getcwd()
    os.chdir("/")
    try:
        with Store(tmp_path / "b" / "s.h5", allow_external=True) as store:
            reader = RegionFeatureReader(store.path, store.feature_parts())
            assert np.array_equal(reader.read(np.arange(len(features))), features)
    finally:
        os.chdir(cwd)


def test_plain_h5py_reader_following_design_alone(tmp_path):
    """A reader that knows only the README's format section (no cfpairs import) gets the pairs back."""
    write_store(tmp_path / "s.h5", "text")
    with h5py.File(tmp_path / "s.h5", "r") as h5:
        assert h5.attrs["format"] == "cfpairs" and h5.attrs["format_version"] == 3
        assert json.loads(h5.attrs["class_names"]) == ["neg", "pos"]
        vocab = [t.decode() for t in h5["vocab"][()]]
        ex = h5["train/examples"]
        pairs = h5["train/pairs/index"][()]
        texts = [t.decode() for t in ex["text"][()]]
        for orig, cf in pairs:
            assert not ex["is_counterfactual"][orig] and ex["is_counterfactual"][cf]
            assert ex["label"][orig] != ex["label"][cf]
            words = [vocab[t] for t in ex["tokens"][orig][: ex["length"][orig]]]
            assert " ".join(w if w != "<unk>" else "xyz" for w in words) == texts[orig]
