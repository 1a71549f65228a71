"""Table columns (`cftrain.columns`) and the predictions a run keeps (`cftrain.scores`): every
registered column on every label kind it declares, ECE by hand, a run's metrics recomputed from its
kept predictions, a column registered after training shown by `cftrain collect`, old runs named
and their predictions kept by `cftrain eval --keep`, damaged predictions files refused."""

from __future__ import annotations

import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cfpairs.errors import UserError
from cfpairs.outputs import read_marker
from cftrain.collect import collect
from cftrain.columns import COLUMNS, Column, column_values, register
from cftrain.columns.calibration import expected_calibration_error
from cftrain.labels import SoftTargets, training_labels
from cftrain.metrics import pair_consistency, split_metrics
from cftrain.rundir import RunDir
from cftrain.scores import TOP_K, kept_scores, read_scores, write_scores
from cftrain.table import run_table
from tests.helpers import refused

KINDS = ("binary", "multiclass", "multilabel", "soft")


class Split(SimpleNamespace):
    def __len__(self):
        return len(self.labels)


def split_of(kind: str, n: int = 12, classes: int = 3, seed: int = 0):
    """A split as the metrics read it (targets, labels, pairs), each label kind, random."""
    rng = np.random.default_rng(seed)
    labels = torch.as_tensor(rng.integers(0, 2 if kind == "binary" else classes, n))
    if kind == "binary":
        targets = labels[:, None].float()
    elif kind == "multilabel":
        targets = torch.as_tensor(rng.random((n, classes)) < 0.5).float()
    elif kind == "soft":
        index = torch.as_tensor(rng.integers(0, 40, (n, 3)))
        targets = SoftTargets(index, torch.as_tensor(rng.random((n, 3)), dtype=torch.float32), 40)
        labels = targets.best()
    else:
        targets = torch.nn.functional.one_hot(labels, classes).float()
    pairs = np.stack([np.arange(n // 2), n // 2 + np.arange(n // 2)], 1)
    a, b = pairs[0]  # the first pair keeps its label, the second changes it: both relations present
    if kind == "soft":
        targets.index[b], targets.score[b] = targets.index[a], targets.score[a]
        labels = targets.best()
    else:
        targets[b], labels[b] = targets[a], labels[a]
        c, d = pairs[1]
        if kind == "multiclass":
            labels[d] = (labels[c] + 1) % classes
            targets[d] = torch.nn.functional.one_hot(labels[d], classes).float()
        else:
            targets[d] = 1 - targets[c]
            labels[d] = 1 - labels[c] if kind == "binary" else labels[d]
    dense = targets.dense() if kind == "soft" else targets
    same = (dense[pairs[:, 0]] == dense[pairs[:, 1]]).all(1).numpy()  # a pair of equal labels keeps them
    return Split(name="val", targets=targets, labels=labels, is_counterfactual=torch.arange(n) >= n // 2,
                 pairs=pairs, pair_kinds=None, subsets={"first": np.arange(3)},
                 pair_relations=np.where(same, "keep", "flip").astype(object))


def width(kind: str, data) -> int:
    return 1 if kind == "binary" else data.targets.shape[1]


@pytest.mark.parametrize("name", list(COLUMNS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_column_is_computed_for_the_label_kinds_it_declares(name, kind):
    found = COLUMNS[name]
    data = split_of(kind)
    logits = torch.randn(3, len(data.labels), width(kind, data), generator=torch.Generator().manual_seed(1))
    values = column_values({"val": kept_scores(logits, data, kind)}, training_labels(kind), only=[name])
    if kind not in found.label_kinds:
        assert name not in values
        return
    cell = values[name]["val"]
    assert cell["value"] is not None and found.low <= cell["value"] <= found.high
    assert 0 < cell["n"] <= len(data.labels)
    assert found.header and found.what and found.better in ("lower", "higher")


def test_ece_by_hand():
    confidence = torch.tensor([0.95, 0.95, 0.55, 0.65])
    correct = torch.tensor([True, False, True, True])
    # bins of 1/15: 0.95 -> bin 14 (acc 0.5, conf 0.95), 0.55 -> bin 8 (1, .55), 0.65 -> bin 9 (1, .65)
    expected = 100 * (2 / 4 * 0.45 + 1 / 4 * 0.45 + 1 / 4 * 0.35)
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected)
    # binary logits through the column: confidence max(p, 1 - p) of the sigmoid
    data = split_of("binary", n=4)
    data.labels = torch.tensor([1, 0, 0, 1])
    logit = torch.log(torch.tensor([0.95, 0.95, 0.45, 0.65]) / (1 - torch.tensor([0.95, 0.95, 0.45, 0.65])))
    cell = COLUMNS["ece"].compute(kept_scores(logit[None, :, None], data, "binary"), training_labels("binary"))
    assert cell["value"] == pytest.approx(expected, abs=1e-4) and cell["n"] == 4


def test_soft_labels_keep_each_members_top_answers_and_the_ensembles():
    data = split_of("soft", n=6)
    logits = torch.randn(2, 6, 40, generator=torch.Generator().manual_seed(0))
    kept = kept_scores(logits, data, "soft")
    assert kept.top_index.shape == (2, 6, TOP_K)
    assert torch.equal(kept.top_index[1, :, 0].long(), logits[1].argmax(1))
    assert torch.equal(kept.predicted(), logits.mean(0).argmax(1))
    labels = training_labels("soft")
    assert split_metrics(kept.metric_logits(), kept, labels) == split_metrics(logits.mean(0), data, labels)


@pytest.mark.parametrize("kind", KINDS)
def test_the_file_gives_back_what_was_kept(tmp_path, kind):
    data = split_of(kind)
    logits = torch.randn(2, len(data.labels), width(kind, data))
    write_scores(tmp_path / "p.npz", {"val": kept_scores(logits, data, kind)}, width(kind, data))
    back = read_scores(tmp_path / "p.npz")["val"]
    labels = training_labels(kind)
    assert split_metrics(back.metric_logits(), back, labels) == split_metrics(logits.mean(0), data, labels)
    assert np.array_equal(back.pairs, data.pairs) and np.array_equal(back.subsets["first"], np.arange(3))
    if kind != "soft":
        assert torch.equal(back.scores, logits)


def test_damaged_predictions_files_are_refused(tmp_path):
    data = split_of("binary")
    path = tmp_path / "p.npz"
    write_scores(path, {"val": kept_scores(torch.randn(1, 12, 1), data, "binary")}, 1)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match="not a readable predictions file"):
        read_scores(path)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a0.npy", b"\0" * (80 << 20))
    with pytest.raises(UserError, match="would expand"):
        read_scores(bomb)
    arrays = dict(np.load(_rewritten(good, tmp_path)))
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = 99
    np.savez(path, **{**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(UserError, match="predictions format 99"):
        read_scores(path)
    meta["version"] = 1
    soft = tmp_path / "soft.npz"
    write_scores(soft, {"val": kept_scores(torch.randn(1, 12, 40), split_of("soft"), "soft")}, 40)
    soft_arrays = dict(np.load(soft))
    soft_meta = json.loads(str(soft_arrays["meta"]))
    top = soft_meta["splits"]["val"]["mean_index"]
    np.savez(soft, **{**soft_arrays, top: soft_arrays[top] + 100})
    with pytest.raises(UserError, match="mean_index names a class outside the 40"):
        read_scores(soft)
    np.savez(path, **{**arrays, "meta": np.array(json.dumps({**meta, "label_kind": "fuzzy"}))})
    with pytest.raises(UserError, match="meta: label_kind: 'fuzzy' is not one of"):
        read_scores(path)
    pairs_key = meta["splits"]["val"]["pairs"]
    np.savez(path, **{**arrays, "meta": np.array(json.dumps(meta)), pairs_key: np.array([[0, 99]])})
    with pytest.raises(UserError, match="pairs name a row outside"):
        read_scores(path)


def _rewritten(data: bytes, folder):
    path = folder / "copy.npz"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def old_table(stores, tmp_path_factory):
    """A two-row table trained before the test's column existed."""
    out = tmp_path_factory.mktemp("late") / "table"
    run_table(stores["vector"], out, modes=["chance", "augmented"], epochs=2, jobs=1)
    return out


class PredictedPositive(Column):
    """A column only this test registers: the share of rows the ensemble predicts positive, %."""
    name, header = "positive-share", "predicted positive"
    label_kinds = ("binary",)
    what = "rows predicted positive, %"

    @classmethod
    def compute(cls, scores, labels):
        return {"value": 100.0 * float((scores.logits()[:, 0] > 0).float().mean()), "n": len(scores)}


@pytest.fixture
def late_column():
    register(PredictedPositive)
    yield PredictedPositive
    COLUMNS.pop(PredictedPositive.name)


def brute_force_share(run_dir, store, split: str) -> float:
    """The share from the run's weights, its store's split read again (no kept predictions)."""
    from cftrain.data import load_split
    from cftrain.metrics import ensemble_logits
    from cftrain.loading import open_store

    with open_store(store) as opened:
        data = load_split(opened, split)
    logits = ensemble_logits(RunDir(run_dir).load_members(), data)
    return round(100.0 * float((logits[:, 0] > 0).float().mean()), 2)


def test_collect_shows_a_column_registered_after_the_runs_were_trained(old_table, stores, late_column, tmp_path):
    before = json.loads((old_table / "augmented" / "metrics.json").read_text())
    assert "positive-share" not in before["columns"] and "ece" in before["columns"]
    out = tmp_path / "view"
    text = collect(old_table, out=out)
    assert "val predicted positive" in text and "rows predicted positive" in text
    table = json.loads((out / "table.json").read_text())
    row = next(r for r in table["rows"] if r["mode"] == "augmented")
    assert row["columns"]["positive-share"]["val"]["value"] == brute_force_share(old_table / "augmented",
                                                                              stores["vector"], "val")
    chance = next(r for r in table["rows"] if r["mode"] == "chance")
    assert chance["columns"]["positive-share"]["val"]["value"] is not None  # drawn predictions are kept too
    assert json.loads((old_table / "augmented" / "metrics.json").read_text()) == before  # nothing written


def test_a_run_without_kept_predictions_is_named_and_eval_keep_adds_them(old_table, stores, late_column, tmp_path,
                                                                        capsys):
    import shutil
    copy = tmp_path / "table"
    shutil.copytree(old_table, copy)
    run = copy / "augmented"
    (run / "predictions.npz").unlink()  # as a run trained before predictions were kept
    text = collect(copy)
    err = capsys.readouterr().err
    assert "trained before runs kept their predictions" in err and f"cftrain eval {run} " in err and "--keep" in err
    line = next(l for l in text.splitlines() if l.startswith("| With edited data"))
    assert line.count(" - ") >= 1
    from cfbuild.builders.toy import build_toy
    build_toy(tmp_path / "other.h5", n=200, seed=1)  # fits the run, is not its store
    refused("cftrain", ["eval", run, tmp_path / "other.h5", "--keep"], "--keep", "not the store")
    from tests.helpers import ok
    ok("cftrain", ["eval", run, stores["vector"], "--keep"])
    assert (run / "predictions.npz").is_file()
    assert "predictions.npz" in read_marker(run)["files"]
    text = collect(copy)
    assert "trained before runs kept" not in capsys.readouterr().err
    line = next(l for l in text.splitlines() if l.startswith("| With edited data"))
    assert f"| {brute_force_share(run, stores['vector'], 'val'):.1f} |" in line


def test_a_runs_metrics_are_computed_from_the_predictions_it_keeps(old_table):
    run = RunDir(old_table / "augmented")
    metrics, kept = run.read_metrics(), run.read_scores()
    labels = training_labels("binary")
    assert set(kept) == set(metrics["splits"])
    for split, scores in kept.items():
        assert split_metrics(scores.logits(), scores, labels) == metrics["splits"][split]
        assert pair_consistency(scores.logits(), scores, labels) == metrics["consistency"].get(split)
    assert kept["val"].members == 1 and metrics["columns"]["ece"]["val"]["n"] == len(kept["val"])


def test_a_column_value_outside_its_range_is_refused(old_table, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(old_table / "augmented", run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["columns"]["ece"]["val"]["value"] = 140.0
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(UserError, match=r"columns\.ece\.val\.value: 140.0 is outside"):
        RunDir(run).read_metrics()


def test_every_view_shows_the_late_column(old_table, stores, late_column, tmp_path):
    from cftrain.report import report_markdown
    share = f"{brute_force_share(old_table / 'augmented', stores['vector'], 'val'):.1f}"
    sweep = collect(old_table, view="sweep")
    assert "val predicted positive" in sweep and f"| {share} (n=1) |" in sweep
    curve = collect(old_table, view="curve", split="val")
    assert "val predicted positive (lower is better)" in curve and f"| {share} (n=1) |" in curve
    report = report_markdown([old_table / "augmented", old_table / "chance"], tmp_path / "r.md")
    assert "val predicted positive" in report and f"| {share} |" in report


def test_the_viewer_shows_the_columns_of_a_predictions_page(old_table, stores, tmp_path):
    from tests.helpers import ok
    page = tmp_path / "p.json"
    ok("cftrain", ["eval", old_table / "augmented", stores["vector"], "--predictions", page])
    found = json.loads(page.read_text())["splits"]["val"]["columns"]["ece"]
    metrics = json.loads((old_table / "augmented" / "metrics.json").read_text())
    assert found["value"] == metrics["columns"]["ece"]["val"]["value"] and found["header"] == "ECE"
    ok("cfbuild", ["view", stores["vector"], "--split", "val", "--predictions", page, "--out", tmp_path / "v.html"])
    html = (tmp_path / "v.html").read_text()
    assert f"ECE on val: <b>{found['value']:.1f}</b> over {found['n']} rows (lower is better)" in html
