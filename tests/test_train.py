"""Training on the toy store: run directory contract, modes, and the relations GS must show."""

import json

import h5py
import numpy as np
import pytest
import torch

from cftrain.presets import resolve
from cftrain.evaluate import evaluate_run
from cftrain.table import run_table, submission_order
from cftrain.train import run
from tests.helpers import run_cli


@pytest.mark.real_plots
def test_run_directory_contract(stores, tmp_path):
    toy = stores["vector"]  # the toy task, 200 pairs
    metrics = run(toy, tmp_path / "r", resolve("toy", mode="gs", epochs=4, ensemble=2))
    written = {"config.json", "history.jsonl", "metrics.json", "model.pt", "history.png", "predictions.npz"}
    assert {p.name for p in (tmp_path / "r").iterdir()} == written | {".cfpairs"}
    marker = json.loads((tmp_path / "r" / ".cfpairs").read_text())  # what --force may replace, and only that
    assert marker["kind"] == "run" and set(marker["files"]) == written
    assert (tmp_path / "r" / "history.png").stat().st_size > 1000  # the real picture (tests/test_plots.py)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["mode"] == "gs" and config["ensemble"] == 2 and config["model"] == "mlp"
    history = [json.loads(line) for line in (tmp_path / "r" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 4 and all({"task_loss", "gs", "val_accuracy", "seconds"} <= set(h) for h in history)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["best_epoch"] == max(history, key=lambda h: h["val_accuracy"])["epoch"]
    val = saved["splits"]["val"]
    assert (val["all"]["n"], val["original"]["n"], val["edited"]["n"]) == (100, 50, 50)
    assert val["all"]["accuracy"] == max(h["val_accuracy"] for h in history)
    state = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    assert len(state["members"]) == 2
    again = evaluate_run(tmp_path / "r", toy)  # reloading the ensemble reproduces every figure
    assert again["splits"] == saved["splits"]


def test_accuracy_matches_an_independent_computation(stores, tmp_path):
    toy = stores["vector"]
    run(toy, tmp_path / "r", resolve("toy", mode="augmented", epochs=3))
    state = torch.load(tmp_path / "r" / "model.pt", weights_only=True)["members"][0]
    w, b = state["net.0.weight"].numpy()[0], state["net.0.bias"].numpy()[0]
    with h5py.File(toy) as h5:
        x, y = h5["test/examples/x"][()], h5["test/examples/label"][()]
        cf = h5["test/examples/is_counterfactual"][()]
    pred = (x @ w + b > 0).astype(int)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())["splits"]["test"]
    assert saved["all"]["accuracy"] == pytest.approx(100 * np.mean(pred == y), abs=0.01)
    assert saved["edited"]["accuracy"] == pytest.approx(100 * np.mean(pred[cf] == y[cf]), abs=0.01)


def test_original_mode_never_sees_counterfactuals(stores, tmp_path, monkeypatch):
    from cftrain.methods import Method

    seen = []
    real_step = Method.step
    monkeypatch.setattr(Method, "step", lambda self, b, at: seen.append(len(b["x"])) or real_step(self, b, at))
    run(stores["vector"], tmp_path / "r", resolve("toy", mode="original", epochs=1))
    assert sum(seen) == 200  # the 200 originals of train, not the 400 rows


def test_chance_is_near_half(toy, tmp_path):
    metrics = run(toy, tmp_path / "r", resolve("toy", mode="chance"))
    assert abs(metrics["splits"]["test"]["all"]["accuracy"] - 50) < 4


@pytest.mark.slow
def test_gs_beats_augmentation_and_random_relations_on_the_shifted_split(toy, tmp_path):
    for seed in range(3):
        scores = {mode: run(toy, tmp_path / f"{mode}{seed}", resolve("toy", mode=mode, seed=seed))
                  ["splits"]["test_shifted"]["all"]["accuracy"] for mode in ("augmented", "gs", "gs-random")}
        assert scores["gs"] > scores["augmented"] + 10, (seed, scores)
        assert scores["gs"] > scores["gs-random"] + 10, (seed, scores)


def test_table_writes_json_and_markdown(stores, tmp_path):
    table = run_table(stores["vector"], tmp_path, modes=["chance", "augmented", "gs"], epochs=1, jobs=1)
    assert [r["mode"] for r in table["rows"]] == ["chance", "augmented", "gs"]
    assert json.loads((tmp_path / "table.json").read_text())["rows"][2]["splits"] == table["rows"][2]["splits"]
    markdown = (tmp_path / "table.md").read_text()
    assert "With edited data + GS" in markdown and "test_shifted all (n=200)" in markdown


def test_cli_usage_errors(toy, tmp_path):
    result = run_cli("cli.cftrain", "run", str(toy), "--out", str(tmp_path / "r"), "--mode", "nope")
    assert result.returncode == 2 and "--mode" in result.stderr
    from cfpairs.store import StoreWriter
    with StoreWriter(tmp_path / "noval.h5", task="toy", input_kind="vector", label_kind="binary",
                     class_names=["n", "p"], build={}, sources=[]) as writer:
        writer.write_split("train", {"id": ["a"], "is_counterfactual": [False], "label": [0],
                                     "x": np.zeros((1, 2), np.float32)})
    result = run_cli("cli.cftrain", "run", str(tmp_path / "noval.h5"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "missing val" in result.stderr


def test_text_models_train_and_reload_through_the_cli(tmp_path):
    """bow on a text store and nli-bow on a text_pair store, end to end, then `cftrain eval`."""
    from cfbuild.builders.table import build_table

    rows = {"text": [{"g": i, "a": f"good film {i}", "b": "x", "y": "1"} for i in range(8)]
            + [{"g": i, "a": f"bad film {i}", "b": "x y", "y": "0"} for i in range(8)]}
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows["text"]) + "\n")
    for cols, name in ((["a"], "text.h5"), (["a", "b"], "pair.h5")):
        build_table({"train": path, "val": path, "test": path}, tmp_path / name, text_cols=cols, label_col="y",
                    pair_col="g")
        result = run_cli("cli.cftrain", "run", str(tmp_path / name), "--out", str(tmp_path / name[:-3]),
                         "--epochs", "30", "--batch-size", "4", "--optimizer", "adam", "--lr", "0.05")
        assert result.returncode == 0, result.stderr
        metrics = json.loads((tmp_path / name[:-3] / "metrics.json").read_text())
        assert metrics["model"] == ("bow" if name == "text.h5" else "nli-bow")
        assert metrics["splits"]["test"]["all"]["accuracy"] == 100.0  # "good" vs "bad" is learnable
        evaluated = run_cli("cli.cftrain", "eval", str(tmp_path / name[:-3]), str(tmp_path / name))
        assert json.loads(evaluated.stdout)["splits"] == metrics["splits"]


@pytest.mark.e2e
def test_table_rows_in_parallel_processes_equal_one_process(toy, tmp_path):
    modes = ["chance", "augmented", "gs"]
    one = run_table(toy, tmp_path / "one", modes=modes, epochs=3, jobs=1)
    two = run_table(toy, tmp_path / "two", modes=modes, epochs=3, jobs=2)
    assert [r["splits"] for r in one["rows"]] == [r["splits"] for r in two["rows"]]
    assert [r["alignment"] for r in one["rows"]] == [r["alignment"] for r in two["rows"]]
    assert (tmp_path / "one" / "table.md").read_text() == (tmp_path / "two" / "table.md").read_text()
    for row in two["rows"][1:]:  # runs start most expensive first; each row still holds its own run
        assert row["splits"] == json.loads((tmp_path / "two" / row["mode"] / "metrics.json").read_text())["splits"]


def test_a_table_starts_its_most_expensive_runs_first():
    from cftrain.jobs import Job
    plan = [Job(f"{mode}/seed-{seed}", resolve("toy", mode=mode, seed=seed), {"mode": mode, "seed": seed})
            for mode in ["chance", "shuffled", "original", "augmented", "gs", "gs-random"] for seed in (0, 1)]
    order = submission_order(plan)
    assert [job.labels["mode"] for job in order[::2]] == ["gs", "gs-random", "augmented", "shuffled",
                                                          "original", "chance"]
    assert [job.labels["seed"] for job in order] == [0, 1] * 6
