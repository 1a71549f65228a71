"""Stores without our trainer: the Python API, the torch dataset, export to datasets / parquet,
and the docs/STORE.md example run as written."""

from __future__ import annotations

import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import cfpairs
from cfbuild.export import reconstructed_pairs
from cfpairs.store import Store
from tests.conftest import STORE_KINDS
from tests.helpers import REPO, run_cli


def test_open_store_gives_numpy_columns_and_pairs(stores):
    with cfpairs.open_store(stores["text"]) as store, Store(stores["text"]) as raw:
        assert store.splits == raw.splits and store.class_names == raw.class_names
        train = store["train"]
        assert np.array_equal(train.pairs, raw.split("train").pairs_index[()])
        assert train.examples["text"].tolist() == raw.split("train").read("text").tolist()
        assert len(train) == len(train.examples["id"]) == len(train.pair_ids)


def test_pair_ids_join_each_original_with_its_counterfactuals(stores):
    with cfpairs.open_store(stores["vector"]) as store:
        view = store["train"]
        ids = view.pair_ids
        for a, b in view.pairs:
            assert ids[a] == ids[b] >= 0
        assert len(np.unique(ids[ids >= 0])) == len(view.pairs)  # toy: one edit per original


@pytest.mark.parametrize("kind", ["vector", "text", "regions"])
def test_torch_dataset_gives_pairs_through_a_plain_dataloader(stores, kind):
    with cfpairs.open_store(stores[kind]) as store:
        view = store["train"]
        data = store.torch_dataset("train")
        assert len(data) == len(view.pairs)
        original, counterfactual = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
        a, b = view.pairs[:4, 0], view.pairs[:4, 1]
        assert original["id"] == view.examples["id"][a].tolist()
        assert counterfactual["id"] == view.examples["id"][b].tolist()
        assert not original["is_counterfactual"].any() and counterfactual["is_counterfactual"].all()
        if kind == "regions":
            with Store(stores[kind]) as raw:
                feats = raw.regions["features"][()]
            rows, mask = view.examples["image_row"][b], view.examples["region_mask"][b]
            expected = feats[rows] * mask[..., None]
            assert torch.allclose(counterfactual["features"], torch.as_tensor(expected))
        singles = store.torch_dataset("val", pairs=False)
        assert len(singles) == len(store["val"]) and singles[0]["id"] == store["val"].examples["id"][0]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_export_hf_round_trip(stores, kind, tmp_path):
    import datasets

    result = run_cli("cfbuild", "export", str(stores[kind]), "--to", "hf", str(tmp_path / "hf"))
    assert result.returncode == 0, result.stderr
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    with cfpairs.open_store(stores[kind]) as store:
        assert list(loaded) == store.splits
        for name in store.splits:
            view, table = store[name], loaded[name]
            ex = view.examples
            assert table["id"] == ex["id"].tolist() and table["is_counterfactual"] == ex["is_counterfactual"].tolist()
            rebuilt = reconstructed_pairs(np.array(table["pair_id"]), np.array(table["is_counterfactual"]))
            expected = view.pairs[np.lexsort((view.pairs[:, 1], view.pairs[:, 0]))]
            assert np.array_equal(rebuilt, expected)
            kinds = np.array(table["pair_kind"], dtype=object)
            assert kinds[view.pairs[:, 1]].tolist() == view.pair_kinds.tolist()
            if "label" in ex and ex["label"].ndim == 1:
                assert table.features["label"].names == store.class_names
                assert table["label"] == ex["label"].tolist()
            elif "label" in ex:
                assert np.array_equal(np.array(table["label"], np.float32), ex["label"])
            else:
                assert [len(v) for v in table["label_index"]] == (ex["label_index"] >= 0).sum(1).tolist()
            for prefix in ("", "premise_", "hypothesis_"):
                if f"{prefix}tokens" in ex:
                    lengths = ex[f"{prefix}length"]
                    assert [len(t) for t in table[f"{prefix}tokens"]] == lengths.tolist()
                    assert table[f"{prefix}tokens"][0] == ex[f"{prefix}tokens"][0][:lengths[0]].tolist()
                    assert table[f"{prefix}text"] == ex[f"{prefix}text"].tolist()
            if "x" in ex:
                assert np.array_equal(np.array(table["x"], np.float32), ex["x"])
            if "region_mask" in ex:
                assert table["image_id"] == store.image_ids[ex["image_row"]].tolist()
                assert "features" not in table.column_names


def test_export_parquet_reads_back_with_pyarrow(stores, tmp_path):
    result = run_cli("cfbuild", "export", str(stores["text_pair"]), "--to", "parquet", str(tmp_path / "pq"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == [".cfpairs", "README.md", "croissant.json", "pairs",
                                                                  "store.json", "test.parquet", "train.parquet",
                                                                  "val.parquet"]
    with cfpairs.open_store(stores["text_pair"]) as store:
        table = pq.read_table(tmp_path / "pq" / "train.parquet").to_pydict()
        ex = store["train"].examples
        assert table["premise_text"] == ex["premise_text"].tolist() and table["label"] == ex["label"].tolist()
        assert table["pair_id"] == store["train"].pair_ids.tolist()


def test_store_doc_example_runs_as_written(stores, tmp_path):
    """The plain-h5py example in docs/STORE.md, run against a built store."""
    doc = (REPO / "docs" / "STORE.md").read_text()
    code = re.search(r"<!-- example: read-pairs -->\s*```python\n(.*?)```", doc, re.S).group(1)
    namespace = {"PATH": str(stores["text"])}
    exec(compile(code, "docs/STORE.md", "exec"), namespace)
    with cfpairs.open_store(stores["text"]) as store:
        view = store["train"]
        assert namespace["pairs"] == [(view.examples["text"][a], view.examples["text"][b]) for a, b in view.pairs]


def test_datasets_hdf5_loader_reads_one_group_with_explicit_features(stores):
    """What docs/STORE.md says about load_dataset("hdf5"), kept true."""
    doc = (REPO / "docs" / "STORE.md").read_text()
    code = re.search(r"<!-- example: datasets-hdf5 -->\s*```python\n(.*?)```", doc, re.S).group(1)
    namespace = {"PATH": str(stores["text"])}
    exec(compile(code, "docs/STORE.md", "exec"), namespace)
    with cfpairs.open_store(stores["text"]) as store:
        assert namespace["train"][0]["train"]["examples"]["id"] == store["train"].examples["id"][0]
        assert len(namespace["train"]) == len(store["train"])


@pytest.mark.parametrize("kind", ["text", "text_pair"])
def test_export_then_import_gives_back_the_examples_and_pairs(stores, kind, tmp_path):
    assert run_cli("cfbuild", "export", str(stores[kind]), "--to", "parquet", str(tmp_path / "pq")).returncode == 0
    result = run_cli("cfbuild", "import", str(tmp_path / "pq"), "--out", str(tmp_path / "again.h5"))
    assert result.returncode == 0, result.stderr
    with cfpairs.open_store(stores[kind]) as a, cfpairs.open_store(tmp_path / "again.h5") as b:
        assert (a.task, a.input_kind, a.label_kind, a.class_names) == (b.task, b.input_kind, b.label_kind,
                                                                        b.class_names)
        for name in a.splits:
            x, y = a[name], b[name]
            by_id = {i: r for r, i in enumerate(y.examples["id"])}
            rows = np.array([by_id[i] for i in x.examples["id"]])  # same ids, rows may be reordered
            for field in ("label", "is_counterfactual", *[f for f in x.examples if f.endswith("text")]):
                assert y.examples[field][rows].tolist() == x.examples[field].tolist(), field
            mapped = {(int(rows[p]), int(rows[q])) for p, q in x.pairs}
            assert mapped == {tuple(p) for p in y.pairs.tolist()}
            assert sorted(y.pair_kinds.tolist()) == sorted(x.pair_kinds.tolist())
