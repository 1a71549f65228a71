"""Keep pairs (store format 3): pairs whose edit keeps the label, the format's rules and readers,
`cfbuild swap`, the methods on them (GS's counterpart and logit pairing by hand), consistency over
flip pairs only, the flip rate, and a table on a swapped store."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
import torch

from cfbuild.builders.swap import Swapper, build_swap, read_terms
from cfbuild.builders.table import build_table
from cfpairs.api import PairStore
from cfpairs.check import check_store
from cfpairs.errors import StoreError, UserError
from cfpairs.writer import StoreWriter
from cftrain.columns import COLUMNS
from cftrain.gs import keep_sums
from cftrain.labels import training_labels
from cftrain.methods.logit_pairing import logit_pairing
from cftrain.metrics import pair_consistency
from cftrain.scores import kept_scores


def write_vectors(path, labels, pairs, relations, version=None):
    with StoreWriter(path, task="t", input_kind="vector", label_kind="binary", class_names=["a", "b"], build={},
                     sources=[]) as writer:
        n = len(labels)
        writer.write_split("train", {"id": [f"r{i}" for i in range(n)], "is_counterfactual": np.arange(n) >= 2,
                                     "label": np.array(labels), "x": np.eye(n, 3, dtype=np.float32)},
                           pairs, ["k"] * len(pairs), pairs_relation=relations)


def test_format_3_keeps_each_pairs_relation(tmp_path):
    write_vectors(tmp_path / "s.h5", [0, 1, 0, 0], [(0, 1), (0, 2)], ["flip", "keep"])
    with PairStore(tmp_path / "s.h5") as store:
        assert store.format_version == 3
        assert store["train"].pair_relations.tolist() == ["flip", "keep"]
    check_store(tmp_path / "s.h5", digest=True)


@pytest.mark.parametrize("labels, relations, message", [
    ([0, 0, 1, 1], ["flip", "flip"], "with the same label (a flip pair changes it; relation keep)"),
    ([0, 1, 1, 0], ["keep", "flip"], "pairs/relation: pair 0 is a keep pair, but rows 0 (r0) and 1 (r1)"),
    ([0, 1, 0, 1], ["flip", "same"], "pair 1 has relation 'same', expected one of flip, keep"),
])
def test_relations_are_checked_by_the_labels(tmp_path, labels, relations, message):
    with pytest.raises(StoreError, match=re.escape(message)):
        write_vectors(tmp_path / "s.h5", labels, [(0, 1), (2, 3)], relations)
    assert not (tmp_path / "s.h5").exists()


def test_a_format_2_store_reads_every_pair_as_a_flip(tmp_path):
    write_vectors(tmp_path / "s.h5", [0, 1, 0, 1], [(0, 1), (2, 3)], None)
    with h5py.File(tmp_path / "s.h5", "a") as h5:  # what cfpairs 0.3.0 before keep pairs wrote
        del h5["train/pairs/relation"]
        h5.attrs["format_version"] = 2
    check_store(tmp_path / "s.h5")
    with PairStore(tmp_path / "s.h5") as store:
        assert store["train"].pair_relations.tolist() == ["flip", "flip"]
    with h5py.File(tmp_path / "s.h5", "a") as h5:
        h5.attrs["format_version"] = 3
    with pytest.raises(StoreError, match="pairs/relation is missing"):
        check_store(tmp_path / "s.h5")


def test_the_swapper_swaps_whole_words_both_ways_keeping_case():
    swapper = Swapper([("he", "she"), ("him", "her"), ("actor", "actress")])
    text, used = swapper.swap("He told HER that she saw him; the Actress, not the shepherd.")
    assert text == "She told HIM that he saw her; the Actor, not the shepherd."
    assert used == {"he,she", "him,her", "actor,actress"}
    assert swapper.swap("Theatre and ashes") == ("Theatre and ashes", set())


def test_term_lists_are_checked_by_line(tmp_path):
    (tmp_path / "t.txt").write_text("# comment\nhe,she\n\nking,queen  # royals\n")
    assert read_terms(tmp_path / "t.txt") == [("he", "she"), ("king", "queen")]
    (tmp_path / "bad.txt").write_text("he,she\nshe,her\n")
    with pytest.raises(UserError, match="line 2: 'she' is also on line 1"):
        read_terms(tmp_path / "bad.txt")
    (tmp_path / "one.txt").write_text("he\n")
    with pytest.raises(UserError, match="line 1: expected two terms"):
        read_terms(tmp_path / "one.txt")
    assert len(read_terms(__import__("cfbuild.builders.swap", fromlist=["x"]).terms_path("gender"))) > 20


@pytest.fixture(scope="module")
def swapped(tmp_path_factory):
    root = tmp_path_factory.mktemp("swap")
    rows = [{"g": i, "a": f"he liked film {i}", "y": "1"} for i in range(6)] + \
           [{"g": i, "a": f"he hated film {i}", "y": "0"} for i in range(6)] + \
           [{"g": 10, "a": "no pronoun here", "y": "1"}, {"g": 10, "a": "no pronoun there", "y": "0"}]
    (root / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    build_table({"train": root / "rows.jsonl", "val": root / "rows.jsonl"}, root / "src.h5", text_cols=["a"],
                label_col="y", pair_col="g")
    build_swap(root / "src.h5", "gender", root / "swap.h5")
    build_swap(root / "src.h5", "gender", root / "swap-edited.h5", edited=True)
    return root


def test_swap_keeps_the_source_and_adds_keep_pairs(swapped):
    with PairStore(swapped / "src.h5") as source, PairStore(swapped / "swap.h5") as store:
        old, new = source["train"], store["train"]
        assert new.examples["id"][:len(old)].tolist() == old.examples["id"].tolist()
        assert new.pairs[:len(old.pairs)].tolist() == old.pairs.tolist()
        keep = new.pair_relations == "keep"
        assert keep.sum() == 6 and (new.pair_relations[:len(old.pairs)] == "flip").all()
        label, text = new.examples["label"], new.examples["text"]
        for a, b in new.pairs[keep]:
            assert label[a] == label[b] and not new.examples["is_counterfactual"][a]
            assert text[b] == text[a].replace("he ", "she ")
        assert "she" in store.vocab  # the vocabulary is rebuilt: swapped-in words are known
        report = store.report["swap"]
    assert report["rows_changed_per_term"]["he,she"] == 12 and report["swapped_rows"] == {"train": 6, "val": 6}
    with PairStore(swapped / "swap-edited.h5") as store:
        view = store["train"]
        keep = view.pairs[view.pair_relations == "keep"]
        assert len(keep) == 12 and view.examples["is_counterfactual"][keep[:, 0]].sum() == 6  # edited rows too


def two_pairs():
    """A flip pair (0, 1) and a keep pair (0, 2), binary labels 1, 0, 1."""
    data = type("Split", (), {"__len__": lambda self: len(self.labels)})()
    data.name, data.labels = "val", torch.tensor([1, 0, 1])
    data.targets, data.is_counterfactual = data.labels[:, None].float(), torch.tensor([False, True, True])
    data.pairs, data.pair_kinds = np.array([[0, 1], [0, 2]]), np.array(["edited", "swapped"], dtype=object)
    data.pair_relations, data.subsets = np.array(["flip", "keep"], dtype=object), {}
    return data


def test_consistency_counts_flip_pairs_and_the_flip_rate_keep_pairs():
    data, labels = two_pairs(), training_labels("binary")
    logits = torch.tensor([[2.0], [-1.0], [-3.0]])  # the keep pair's prediction moves; the flip pair is right
    assert pair_consistency(logits, data, labels) == {"all": {"pairs": 1, "consistency": 100.0}}
    scores = kept_scores(logits[None], data, "binary")
    assert COLUMNS["flip-rate"].compute(scores, labels) == {"value": 100.0, "n": 1}
    steady = kept_scores(torch.tensor([[[2.0], [-1.0], [0.5]]]), data, "binary")
    assert COLUMNS["flip-rate"].compute(steady, labels) == {"value": 0.0, "n": 1}


def test_gs_counterpart_on_keep_pairs_by_hand():
    w = torch.tensor([1.0, 2.0, 0.0], requires_grad=True)
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    members = x[:, None, :].clone().requires_grad_(True)   # (B, 1 member, D)
    logits = (members * w).sum(2, keepdim=True)            # (B, 1, 1): g_i = w for every row
    edges = torch.tensor([[0, 2], [2, 0]])                 # the keep pair, both ways
    sums, counts = keep_sums(members, logits, torch.tensor([[1.0], [0.0], [1.0]]), edges, members=True)
    t = x[2] - x[0]                                   # (0, 1, 1)
    cos = float(w.detach() @ t / (w.detach().norm() * t.norm()))  # 2 / (sqrt 5 sqrt 2)
    assert float(sums[0].detach()) == pytest.approx(2 * cos ** 2) and int(counts[0]) == 2
    sums.sum().backward()                             # differentiable: the penalty trains the weights
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_logit_pairing_takes_garg_form_on_keep_pairs():
    logits = torch.tensor([[[0.5, 1.0]], [[2.0, -1.0]], [[0.0, 3.0]]])  # (B, 1, C)
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    keep = torch.tensor([[0, 2]])
    sums, counts = logit_pairing(logits, targets, keep, margin=2.0)
    assert float(sums[0]) == pytest.approx((0.5 + 2.0) / 2) and float(counts[0]) == 1  # mean |z_j - z_i|
    flip = torch.tensor([[0, 1]])  # gap (1.5, -2), change (-1, +1): hinges max(0, 2 + 1.5), max(0, 2 + 2)
    assert float(logit_pairing(logits, targets, flip, margin=2.0)[0][0]) == pytest.approx((3.5 + 4.0) / 2)


def test_gs_and_logit_pairing_train_on_a_swapped_store_and_a_table_shows_flip_rate(swapped, tmp_path):
    from cftrain.presets import resolve
    from cftrain.table import run_table
    from cftrain.train import run

    for mode in ("gs", "logit-pairing"):
        config = resolve("table", "text", mode=mode, epochs=2)
        metrics = run(swapped / "swap.h5", tmp_path / mode, config)
        assert metrics["columns"]["flip-rate"]["val"]["n"] == 6
        history = [json.loads(line) for line in (tmp_path / mode / "history.jsonl").read_text().splitlines()]
        term = "gs" if mode == "gs" else "clp"
        assert history[0][f"{term}_rows"] == 2 * (7 + 6)  # both ways: the 7 flip pairs and the 6 keep pairs
    table = run_table(swapped / "swap.h5", tmp_path / "t", modes=["augmented", "gs"], epochs=2, jobs=1,
                      reference=False)
    keys = {key for row in table["rows"] for key in row["columns"]}
    assert any("flip" in key for key in keys) and any("relative" in key for key in keys)
    assert all("val" in row["columns"]["flip-rate"] for row in table["rows"])
    assert "val flip rate" in (tmp_path / "t" / "table.md").read_text()


@pytest.mark.parametrize("to", ["parquet", "hf"])
def test_export_and_import_carry_keep_pairs_between_edited_rows(swapped, tmp_path, to):
    from cfbuild.builders.table import build_import
    from cfbuild.export import export_store

    export_store(swapped / "swap-edited.h5", tmp_path / "out", to=to)
    build_import(tmp_path / "out", tmp_path / "again.h5")

    def pairs_by_id(path):
        with PairStore(path) as store:
            return {split: sorted((str(view.examples["id"][a]), str(view.examples["id"][b]), str(kind), str(rel))
                                  for (a, b), kind, rel in zip(view.pairs, view.pair_kinds, view.pair_relations))
                    for split in store.splits for view in [store[split]]}
    before, after = pairs_by_id(swapped / "swap-edited.h5"), pairs_by_id(tmp_path / "again.h5")
    assert after == before
    with PairStore(tmp_path / "again.h5") as store:
        view = store["train"]
        keep = view.pairs[view.pair_relations == "keep"]
        assert view.examples["is_counterfactual"][keep[:, 0]].sum() == 6  # pairs between two edited rows survive


def test_the_viewer_badges_a_keep_pair_by_whether_the_prediction_moved(swapped, tmp_path):
    from cftrain.predict import split_page
    data, labels = two_pairs(), training_labels("binary")
    logits = torch.tensor([[2.0], [-1.0], [-3.0]])
    page = split_page([logits], logits, data, labels, ["a", "b"])
    assert page["correct"] == ["both", "moved"]
    steady = torch.tensor([[2.0], [-1.0], [1.0]])
    assert split_page([steady], steady, data, labels, ["a", "b"])["correct"] == ["both", "steady"]


def test_swap_reads_a_table_with_file(swapped, tmp_path):
    build = __import__("cfbuild.protocol", fromlist=["run_builder"]).run_builder
    build("swap", tmp_path / "t.h5", False, file=swapped / "rows.jsonl", terms="gender", text_col="a",
          label_col="y", pair_col="g")
    with PairStore(tmp_path / "t.h5") as store:
        view = store["train"]
        assert store.splits == ["train"] and (view.pair_relations == "keep").sum() == 6
        assert (view.pair_relations == "flip").sum() == 7
    from tests.helpers import refused
    refused("cfbuild", ["swap", "--file", swapped / "rows.jsonl", "--terms", "gender", "--out", tmp_path / "u.h5"],
            "--file needs --text-col, --label-col, --pair-col")
    refused("cfbuild", ["swap", "--terms", "gender", "--out", tmp_path / "u.h5"], "give --from STORE or --file TABLE")


def test_augmentation_trains_on_both_sides_and_original_leaves_swaps_out(swapped):
    from cftrain.data import load_split
    from cftrain.methods import method
    from cftrain.loading import open_store

    with open_store(swapped / "swap.h5") as store:
        train = load_split(store, "train")
    assert len(method("augmented").training_rows(train, 0)) == len(train) == 14 + 6
    original = method("original").training_rows(train, 0)
    assert len(original) == 7 and not original.is_counterfactual.any()


def test_pair_contrastive_takes_a_keep_pair_as_positives_by_hand():
    from cftrain.methods.pair_contrastive import supervised_contrastive
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])[:, None, :]  # (B, 1 member, D)
    targets = torch.tensor([[1.0], [0.0], [1.0]])                      # 0 and 2 share a label (a keep pair)
    sums, counts = supervised_contrastive(x, targets, temperature=0.5, rows=torch.tensor([True, False, False]))
    s01, s02 = 0.0, 1 / 2 ** 0.5                                       # cosines of row 0 with rows 1 and 2
    expected = -np.log(np.exp(s02 / 0.5) / (np.exp(s01 / 0.5) + np.exp(s02 / 0.5)))
    assert float(sums[0]) == pytest.approx(expected, rel=1e-5) and float(counts[0]) == 1


def test_random_relations_leave_keep_pairs_aside():
    from cftrain.gs import gs_sums
    x = torch.randn(4, 1, 3, requires_grad=True)
    logits = (x * torch.randn(3)).sum(2, keepdim=True)
    targets = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    keep_only = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2]])  # two keep pairs: no class, no sign to borrow
    _, counts, _ = gs_sums(x, logits, targets, keep_only, "binary", random=True, members=True,
                           random_sign="pair", generator=torch.Generator().manual_seed(0))
    assert int(counts.sum()) == 0


def test_the_store_docs_reader_example_reads_keep_pairs(swapped):
    import re as regex
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "STORE.md").read_text()
    code = regex.search(r"<!-- example: read-pairs -->\s*```python\n(.*?)```", doc, regex.S).group(1)
    namespace = {"PATH": str(swapped / "swap.h5")}
    exec(compile(code, "docs/STORE.md", "exec"), namespace)  # its asserts hold: flips differ, keeps agree
    assert (namespace["relation"] == "keep").sum() == 6 and len(namespace["pairs"]) == 13


def test_kfold_pooling_keeps_each_pairs_relation(swapped):
    from cftrain.data import load_split
    from cftrain.folds import fold_splits
    from cftrain.loading import open_store

    with open_store(swapped / "swap.h5") as store:
        splits = {name: load_split(store, name) for name in store.splits}
    for fold in (None, 0, 1):
        found = fold_splits(splits, 2, fold, 0)
        for split in found.values():
            assert len(split.pair_relations) == len(split.pairs)
            keep = split.keep_pairs()
            labels = split.labels.numpy()
            assert (labels[split.pairs[keep, 0]] == labels[split.pairs[keep, 1]]).all()
            assert (labels[split.pairs[~keep, 0]] != labels[split.pairs[~keep, 1]]).all()
        assert sum(s.keep_pairs().sum() for s in found.values()) == 12


def test_a_pair_of_a_row_with_itself_is_refused(tmp_path):
    with pytest.raises(StoreError, match=r"pair 1 joins row 2 with itself"):
        write_vectors(tmp_path / "s.h5", [0, 1, 0, 0], [(0, 1), (2, 2)], ["flip", "keep"])


def test_an_exported_pairs_table_is_not_believed(swapped, tmp_path):
    import pyarrow.parquet as pq
    from cfbuild.builders.table import build_import
    from cfbuild.export import export_store

    export_store(swapped / "swap.h5", tmp_path / "out", to="parquet")
    pairs = pq.read_table(tmp_path / "out" / "pairs" / "train.parquet").to_pydict()
    twice = {k: v + v[:1] for k, v in pairs.items()}  # the first pair listed again
    pq.write_table(__import__("pyarrow").table(twice), tmp_path / "out" / "pairs" / "train.parquet")
    with pytest.raises(UserError, match=r"pairs/train.parquet: row 14: pair .* repeats row 1"):
        build_import(tmp_path / "out", tmp_path / "again.h5")
    assert not (tmp_path / "again.h5").exists()
    card = (tmp_path / "out" / "README.md").read_text()
    (tmp_path / "out" / "README.md").write_text(card.replace("\n## Citation\n", "\n## Citation\n\n- " + "x" * 5000 + "\n"))
    pq.write_table(__import__("pyarrow").table(pairs), tmp_path / "out" / "pairs" / "train.parquet")
    with pytest.raises(UserError, match="card's citation runs to"):
        build_import(tmp_path / "out", tmp_path / "again.h5")


def test_reference_rows_count_flip_and_keep_pairs_as_the_methods_do(swapped, tmp_path):
    pytest.importorskip("sklearn")
    from cftrain.table import run_table
    table = run_table(swapped / "swap.h5", tmp_path / "t", modes=["augmented"], epochs=1, jobs=1)
    rows = {row.get("block", "method"): row for row in table["rows"]}
    for row in (rows["method"], rows["reference"]):
        assert row["consistency"]["val"]["all"]["pairs"] == 7  # flip pairs only
        assert row["columns"]["flip-rate"]["val"]["n"] == 6     # keep pairs
