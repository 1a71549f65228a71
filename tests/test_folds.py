"""K-fold selection (`cftrain sweep --select kfold:K`): folds of train+val pair groups (a pair never
straddles two folds), runs on a fold, refits on train+val, the chosen trial, resume."""

from __future__ import annotations

import json
import shutil
import statistics

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cfbuild.builders.toy import build_toy
from cftrain.data import SplitTensors
from cftrain.folds import concat_splits, fold_of_groups, fold_splits
from cftrain.labels import SoftTargets
from cli.cftrain import main as cftrain_main
from tests.helpers import refused


def split(name: str, groups: int, edits: int, width: int, start: int) -> SplitTensors:
    """`groups` originals, each followed by `edits` counterfactuals paired with it; row r's token
    matrix row is [start + r, 1, 1, ...] (width `width`), its label r % 2."""
    n = groups * (1 + edits)
    tokens = torch.ones(n, width, dtype=torch.long)
    tokens[:, 0] = torch.arange(start, start + n)
    pairs = np.array([[g * (1 + edits), g * (1 + edits) + e] for g in range(groups) for e in range(1, 1 + edits)])
    labels = torch.arange(n) % 2
    return SplitTensors(name, {"tokens": tokens, "length": torch.full((n,), width)}, labels[:, None].float(),
                        labels, torch.tensor([i % (1 + edits) != 0 for i in range(n)]), pairs,
                        {"hard": np.array([1])}, None, np.array(["edited"] * len(pairs), dtype=object))


def test_concat_pads_tokens_and_reindexes_pairs_and_subsets():
    a, b = split("train", 2, 2, 3, 0), split("val", 1, 2, 5, 100)
    both = concat_splits(a, b, "train")
    assert both.inputs["tokens"].shape == (9, 5)
    assert both.inputs["tokens"][:6, 3:].eq(0).all() and both.inputs["tokens"][6:, 0].tolist() == [100, 101, 102]
    assert both.pairs.tolist() == [[0, 1], [0, 2], [3, 4], [3, 5], [6, 7], [6, 8]]
    assert both.subsets["hard"].tolist() == [1, 7] and len(both.pair_kinds) == 6
    soft = concat_splits(*(pytest.importorskip("dataclasses").replace(
        s, targets=SoftTargets(torch.zeros(len(s), k, dtype=torch.long), torch.ones(len(s), k), 4))
        for s, k in ((a, 1), (b, 3))), "train").targets
    assert soft.index.shape == (9, 3) and soft.index[0].tolist() == [0, -1, -1] and soft.score[0].tolist() == [1, 0, 0]


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_folds_partition_pair_groups_and_no_pair_straddles_two(folds):
    splits = {"train": split("train", 10, 2, 4, 0), "val": split("val", 4, 2, 6, 1000),
              "test": split("test", 3, 1, 4, 5000)}
    seen = []
    for fold in range(folds):
        cut = fold_splits(splits, folds, fold, seed=7)
        train_ids = set(cut["train"].inputs["tokens"][:, 0].tolist())
        val_ids = set(cut["val"].inputs["tokens"][:, 0].tolist())
        assert not train_ids & val_ids and len(train_ids | val_ids) == 42  # 14 groups of 3 rows
        for part in (cut["train"], cut["val"]):  # every pair kept whole on its side: 2 pairs per group
            assert len(part.pairs) == 2 * len(part) // 3
            ids = part.inputs["tokens"][:, 0]
            assert all(int(ids[j]) - int(ids[i]) in (1, 2) for i, j in part.pairs)
        assert cut["test"] is splits["test"]
        seen.append(val_ids)
    assert set().union(*seen) == set().union(*[set(s.inputs["tokens"][:, 0].tolist())
                                                for s in (splits["train"], splits["val"])])
    sizes = sorted(len(s) // 3 for s in seen)
    assert sizes[-1] - sizes[0] <= 1 and sum(sizes) == 14
    refit = fold_splits(splits, folds, None, seed=7)
    assert "val" not in refit and len(refit["train"]) == 42 and len(refit["train"].pairs) == 28


def test_fold_assignment_is_seeded_and_needs_enough_groups():
    assert fold_of_groups(20, 4, 1).tolist() == fold_of_groups(20, 4, 1).tolist() != fold_of_groups(20, 4, 2).tolist()
    assert np.bincount(fold_of_groups(22, 4, 0)).tolist() == [6, 6, 5, 5]
    with pytest.raises(Exception, match="3 folds need at least 3 pair groups"):
        fold_of_groups(2, 3, 0)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("folds") / "toy.h5"
    build_toy(path, n=120, seed=0)
    return path


def ok(*args) -> str:
    result = CliRunner().invoke(cftrain_main, [str(a) for a in args])
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.stdout)
    return result.stdout


SWEEP = ["--modes", "gs", "--trials", "3", "--seeds", "0,1", "--select", "kfold:3", "--epochs", "4", "--jobs", "1"]


def _metrics(folder):
    return {str(p.parent.relative_to(folder)): json.loads(p.read_text()) for p in sorted(folder.rglob("metrics.json"))}


@pytest.mark.slow  # whole sweeps of 18 runs and their refits
def test_a_kfold_sweep_ranks_by_folds_and_retrains_the_best_on_train_and_val(toy, tmp_path):
    ok("sweep", toy, "--out", tmp_path / "s", *SWEEP)
    runs = _metrics(tmp_path / "s")
    # 120 train + 30 val originals, each with its edit: every fold run trains on 2/3 and selects on 1/3
    folds = {k: m for k, m in runs.items() if "/fold-" in k}
    assert len(folds) == 3 * 2 * 3
    for m in folds.values():
        assert m["splits"]["train"]["all"]["n"] + m["splits"]["val"]["all"]["n"] == 300
        assert m["splits"]["val"]["all"]["n"] in (100, 98, 102)
    means = {t: np.mean([m["splits"]["val"]["all"]["accuracy"] for k, m in folds.items() if f"trial-{t}/" in k])
             for t in range(3)}
    chosen = max(means, key=means.get)
    epochs = round(statistics.median([m["best_epoch"] for k, m in folds.items() if f"trial-{chosen}/" in k]))
    finals = {k: m for k, m in runs.items() if "/final/" in k}
    assert sorted(finals) == [f"gs/final/trial-{chosen}-epochs-{epochs}/seed-{s}" for s in (0, 1)]
    for key, m in finals.items():
        assert "val" not in m["splits"] and m["splits"]["train"]["all"]["n"] == 300 and m["best_epoch"] == epochs
        config = json.loads((tmp_path / "s" / key / "config.json").read_text())
        assert (config["folds"], config["fold"], config["epochs"]) == (3, None, epochs)
        history = [json.loads(line) for line in (tmp_path / "s" / key / "history.jsonl").read_text().splitlines()]
        assert len(history) == epochs and all(h["val_accuracy"] is None for h in history)
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["modes"]["gs"][0]["trial"] == chosen and summary["final"]["gs"]["trial"] == chosen
    assert summary["modes"]["gs"][0]["splits"]["val"]["mean"] == pytest.approx(means[chosen], abs=0.01)
    test = [finals[k]["splits"]["test"]["all"]["accuracy"] for k in sorted(finals)]
    assert summary["final"]["gs"]["splits"]["test"]["mean"] == pytest.approx(np.mean(test), abs=0.01)
    assert "retrained on train+val" in (tmp_path / "s" / "summary.md").read_text()


@pytest.mark.slow  # whole sweeps of 18 runs and their refits
def test_a_kfold_sweep_resumes_where_it_stopped(toy, tmp_path):
    ok("sweep", toy, "--out", tmp_path / "s", *SWEEP)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("metrics.json")}
    final = next((tmp_path / "s" / "gs" / "final").glob("*/seed-1"))
    for lost in (tmp_path / "s" / "gs" / "trial-2" / "seed-0" / "fold-1", final):  # as if killed before these
        shutil.rmtree(lost)
    ok("sweep", toy, "--out", tmp_path / "s", *SWEEP)
    again = {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("metrics.json")}
    changed = sorted(str(p.parent.relative_to(tmp_path / "s")) for p in again if stamps.get(p) != again[p])
    assert changed == sorted([f"gs/final/{final.parent.name}/seed-1", "gs/trial-2/seed-0/fold-1"])


@pytest.mark.parametrize("select", ["kfold:1", "kfold", "folds:3", "kfold:x"])
def test_a_bad_selection_is_refused_before_any_run(toy, tmp_path, select):
    refused("cftrain", ["sweep", toy, "--out", tmp_path / "s", "--select", select], "--select")
    assert not (tmp_path / "s").exists()


def test_a_refit_without_a_test_split_says_where_its_runs_are():
    from cftrain.views import format_summary
    final = {"trial": 2, "options": {"lr": 3.0}, "epochs": 7, "seeds": [0, 1], "runs": ["gs/final/a/seed-0",
             "gs/final/a/seed-1"], "splits": {"train": {"mean": 90.0, "stderr": 0.1, "n": 2}}, "transfers": {}}
    text = format_summary({"task": "imdb", "metric": "accuracy", "seeds": [0, 1], "folds": 5, "modes": {},
                           "final": {"gs": final}})
    assert "trial 2 retrained on train+val for 7 epochs" in text
    assert "No test split in the store: the retrained runs are gs/final/a/seed-0, gs/final/a/seed-1" in text
    assert "|  |" not in text
