"""Every method on every store kind (a smoke matrix), and the registry the CLI and table read."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cfpairs import open_store
from cftrain.labels import training_labels
from cftrain.methods import METHODS, Method, method, register
from cftrain.methods.baselines import Augmented
from cftrain.metrics import split_metrics
from cftrain.presets import resolve
from cftrain.rundir import RunDir
from cftrain.evaluate import evaluate_run
from cftrain.table import run_table
from cftrain.train import load_splits, run
from tests.conftest import STORE_KINDS, write_multilabel
from tests.helpers import covering, run_cli

pytestmark = pytest.mark.filterwarnings("ignore:nli-bow without --embeddings")


def kind_of(path) -> str:
    with open_store(path) as store:
        return store.label_kind


SMALL = {"nli_embed_dim": 16, "butd_embed_dim": 16, "ngram_buckets": 64}  # sizes, not behaviour: quick runs


def config_for(path, **overrides):
    """The store's preset for a quick run: 2 epochs, batches of 16, small embedding tables."""
    with open_store(path) as store:
        given = {"epochs": 2, "patience": 2, "batch_size": 16, **overrides}
        config = resolve(store.task, store.input_kind, **given)
        small = {k: v for k, v in SMALL.items() if k in config.to_dict() and k not in overrides}
        return resolve(store.task, store.input_kind, **given, **small) if small else config


@pytest.mark.parametrize("name, kind", covering(["gs", *(m for m in METHODS if m != "gs")],
                                                ["text", *(k for k in STORE_KINDS if k != "text")]))  # every method runs on text
def test_every_method_on_every_store_kind(stores, kind, name, tmp_path):
    from cfpairs.errors import UserError
    path, out = stores[kind], tmp_path / "run"
    try:
        config = config_for(path, mode=name)
    except UserError as exc:  # a method may refuse a model or an ensemble, with its own line, before any work
        assert str(exc).startswith(f"--mode {name}: "), exc
        return
    metrics = run(path, out, config)
    trains = METHODS[name].trains
    files = {".cfpairs", "config.json", "metrics.json", "predictions.npz"} | ({"history.jsonl", "model.pt", "history.png"} if trains else set())
    assert {p.name for p in out.iterdir()} == files
    with open_store(path) as store:
        metric, splits = training_labels(store.label_kind).metric, store.splits
    assert metrics["metric"] == metric and json.loads((out / "metrics.json").read_text()) == metrics
    assert list(metrics["splits"]) == splits
    for split, groups in metrics["splits"].items():
        n = groups["all"]["n"]
        assert n == groups.get("original", {"n": 0})["n"] + groups.get("edited", {"n": 0})["n"]
        for values in groups.values():
            assert set(values) == {"n", metric} and 0 <= values[metric] <= 100, (split, values)
    kept = RunDir(out).read_scores()  # the kept predictions give back every metric (every label kind)
    labels = training_labels(kind_of(path))
    for split, scores in kept.items():
        assert split_metrics(scores.metric_logits(), scores, labels) == metrics["splits"][split], split
    if not trains:
        return
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert 1 <= len(history) <= 2 and all(math.isfinite(h["task_loss"]) for h in history)
    terms = METHODS[name].terms  # each line carries what the method reports: its terms and their rows
    assert all(set(h) == {"epoch", "task_loss", f"val_{metric}", "seconds", *terms, *(f"{t}_rows" for t in terms)}
               for h in history), history
    assert all(sum(h[f"{t}_rows"] for h in history) > 0 for t in terms), history
    assert evaluate_run(out, path, device="cpu")["splits"] == metrics["splits"]  # model.pt alone rebuilds it


def test_shuffled_permutes_training_labels_only(stores):
    path = stores["vector"]
    with open_store(path) as store:
        splits = load_splits(store, config_for(path))
    train = splits["train"]
    shuffled = method("shuffled").training_rows(train, seed=0)
    assert sorted(shuffled.labels.tolist()) == sorted(train.labels.tolist())
    assert (shuffled.labels != train.labels).float().mean() > 0.3
    assert np.array_equal(shuffled.inputs["x"].numpy(), train.inputs["x"].numpy())
    assert np.array_equal(shuffled.targets[:, 0].long().numpy(), shuffled.labels.numpy())


@pytest.mark.parametrize("kind", ["text", "text_pair"])
def test_train_time_max_tokens_truncates_every_batch(stores, kind, tmp_path, monkeypatch):
    widths = []
    real_step = Method.step

    def spy(self, batch, at):
        widths.extend(v.shape[1] for k, v in batch.items() if k.endswith("tokens"))
        lengths = [v for k, v in batch.items() if k.endswith("length")]
        assert all(int(v.max()) <= 2 for v in lengths)
        return real_step(self, batch, at)

    monkeypatch.setattr(Method, "step", spy)
    metrics = run(stores[kind], tmp_path / "r", config_for(stores[kind], mode="gs", max_tokens=2))
    assert widths and set(widths) == {2}
    assert json.loads((tmp_path / "r" / "config.json").read_text())["max_tokens"] == 2
    assert evaluate_run(tmp_path / "r", stores[kind], device="cpu")["splits"] == metrics["splits"]


def test_a_new_method_is_one_class(stores, tmp_path):
    """Registering a class makes it a mode for resolve, run and the table (rows in registry order)."""

    from cftrain.step import task_term

    @register
    class Doubled(Augmented):
        name, row_name = "doubled-test", "Augmentation, twice the loss"
        terms = ("again",)

        def extra_terms(self, x, logits, batch, space, at):
            task = task_term(self.run.loss, logits, batch)
            return [type(task)("again", task.sums, task.counts)]

    try:
        table = run_table(stores["vector"], tmp_path, modes=["doubled-test", "augmented"], epochs=2, jobs=1)
        assert [r["mode"] for r in table["rows"]] == ["augmented", "doubled-test"]
        assert table["rows"][1]["name"] == "Augmentation, twice the loss"
        assert "Augmentation, twice the loss" in (tmp_path / "table.md").read_text()
    finally:
        del METHODS["doubled-test"]


def test_a_method_may_refuse_ensembles_with_its_own_line(stores, tmp_path):
    from cfpairs.errors import UserError
    from tests.helpers import refused

    @register
    class OneModel(Augmented):
        name, row_name = "one-model-test", "One model"

        @classmethod
        def check(cls, config, model_class):
            if config.ensemble > 1:
                raise UserError(f"--mode {cls.name}: trains one model at a time; use --ensemble 1")

    try:
        with pytest.raises(UserError, match="^--mode one-model-test: trains one model at a time"):
            config_for(stores["vector"], mode="one-model-test", ensemble=3)
        refused("cftrain", ["table", stores["vector"], "--out", tmp_path / "r", "--modes", "augmented,one-model-test",
                            "--ensemble", 3], "--mode one-model-test: trains one model at a time; use --ensemble 1")
        assert not (tmp_path / "r").exists()
        assert config_for(stores["vector"], mode="one-model-test", ensemble=1).ensemble == 1
    finally:
        del METHODS["one-model-test"]


def test_cli_choices_and_table_order_come_from_the_registry(stores, tmp_path):
    result = run_cli("cli.cftrain", "run", "--help")
    assert all(name in result.stdout for name in METHODS)
    result = run_cli("cli.cftrain", "table", str(stores["vector"]), "--out", str(tmp_path / "t"),
                     "--modes", "gs,chance", "--epochs", "1", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    names = [json.loads((tmp_path / "t" / "table.json").read_text())["rows"][i]["name"] for i in range(2)]
    assert names == [METHODS["chance"].row_name, METHODS["gs"].row_name]


def test_undefined_val_metric_is_a_one_line_error(tmp_path):
    path = write_multilabel(tmp_path / "ml.h5", empty_val=True)
    result = run_cli("cli.cftrain", "run", str(path), "--out", str(tmp_path / "r"), "--epochs", "3")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "val map is undefined" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is absent")
def test_device_cuda_without_cuda_is_a_one_line_error(stores, tmp_path):
    result = run_cli("cli.cftrain", "run", str(stores["vector"]), "--out", str(tmp_path / "r"), "--device", "cuda")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--device cuda: no CUDA device is available" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_cuda_training_matches_cpu(stores, kind, tmp_path):
    path = stores[kind]
    on = {device: run(path, tmp_path / device, config_for(path, mode="gs", device=device))["splits"]
          for device in ("cpu", "cuda")}
    for split, groups in on["cpu"].items():
        for group, values in groups.items():
            cuda = on["cuda"][split][group]
            assert cuda["n"] == values["n"]
            assert all(abs(cuda[k] - v) <= 5 for k, v in values.items() if k != "n"), (split, group, values, cuda)


@pytest.mark.parametrize("command", ["run", "table"])
def test_gs_class_partner_is_refused_up_front_on_single_logit_stores(stores, command, tmp_path):
    out = tmp_path / "out"
    result = run_cli("cli.cftrain", command, str(stores["vector"]), "--out", str(out), "--gs-class", "partner",
                     *(["--modes", "gs"] if command == "table" else []))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--gs-class partner: the binary loss supervises every class the edit changes" in result.stderr
    assert not out.exists()


def test_gs_class_partner_trains_on_the_edits_classes(tmp_path):
    """SNLI-like groups (an original and edits to both other classes): every edge is supervised under
    either choice, on other classes' gradients, so the terms differ from the first step on."""
    from cfbuild.builders.table import build_table  # noqa: PLC0415
    rows = [{"g": g, "p": f"a man {w} {g}", "h": "someone moves", "y": str(y)}
            for g in range(12) for w, y in (("walks", 0), ("sleeps", 1), ("waits", 2))]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    build_table({"train": tmp_path / "rows.jsonl", "val": tmp_path / "rows.jsonl"}, tmp_path / "s.h5",
                text_cols=["p", "h"], label_col="y", pair_col="g")
    histories = {}
    for choice in ("own", "partner"):
        config = config_for(tmp_path / "s.h5", mode="gs", gs_class=choice, epochs=1)
        run(tmp_path / "s.h5", tmp_path / choice, config)
        assert json.loads((tmp_path / choice / "config.json").read_text())["gs_class"] == choice
        histories[choice] = json.loads((tmp_path / choice / "history.jsonl").read_text().splitlines()[0])
    assert histories["own"]["gs_rows"] == histories["partner"]["gs_rows"] == 12 * 4  # both directions of 2 edits
    assert histories["own"]["gs"] != pytest.approx(histories["partner"]["gs"], abs=1e-4)
