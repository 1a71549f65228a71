"""`cftrain run` under torchrun (2 CPU processes, gloo) trains as one process on the same global
batches: same weights, same metrics (within float tolerance), for every registered trained method;
rank 0 alone writes the run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from cftrain.methods import METHODS
from cftrain.presets import resolve
from cftrain.train import run
from tests.helpers import REPO

ARGS = ["--epochs", "3", "--patience", "3", "--batch-size", "64", "--device", "cpu", "--quiet"]

pytestmark = pytest.mark.e2e  # real processes: signals, torchrun, `python -m`


@pytest.mark.parametrize("mode,ensemble", [("gs", 1), ("augmented", 2)])
def test_two_processes_equal_one(stores, tmp_path, mode, ensemble):
    store = stores["vector"]
    single = run(store, tmp_path / "one", resolve("toy", "vector", mode=mode, ensemble=ensemble, epochs=3,
                                                  patience=3, batch_size=64, device="cpu"))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "cli.cftrain", "run", str(store), "--out", str(tmp_path / "two"), "--mode", mode,
                             "--ensemble", str(ensemble), *ARGS],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # one run directory, nothing else
    both = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert both["best_epoch"] == single["best_epoch"]
    for split, groups in single["splits"].items():
        for group, values in groups.items():
            assert abs(both["splits"][split][group]["accuracy"] - values["accuracy"]) <= 0.5, (split, group)
    a = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["members"]
    b = torch.load(tmp_path / "two" / "model.pt", weights_only=True)["members"]
    for state_a, state_b in zip(a, b):
        for key in state_a:
            assert torch.allclose(state_a[key], state_b[key], atol=1e-4), key


def two_processes(store, out, *args):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "cli.cftrain", "run", str(store), "--out", str(out), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("mode", [name for name, cls in METHODS.items() if cls.trains])
def test_every_trained_method_is_exact_under_two_processes(stores, tmp_path, mode):
    """Each method's terms are normalised over both processes (and a method whose terms relate rows of
    different pair groups sees the whole batch): after two epochs of 4 batches, the same weights."""
    store = stores["text"]  # bow: a learned encoding every method can train
    options = dict(mode=mode, ensemble=2, epochs=2, patience=2, batch_size=4, device="cpu")
    run(store, tmp_path / "one", resolve("table", "text", **options))
    result = two_processes(store, tmp_path / "two", "--mode", mode, "--ensemble", "2", "--epochs", "2",
                           "--patience", "2", "--batch-size", "4", "--device", "cpu", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    a = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["members"]
    b = torch.load(tmp_path / "two" / "model.pt", weights_only=True)["members"]
    worst = max(float((state_a[key] - state_b[key]).abs().max()) for state_a, state_b in zip(a, b) for key in state_a)
    assert worst <= 1e-4, (mode, worst)
    one = [json.loads(line) for line in (tmp_path / "one" / "history.jsonl").read_text().splitlines()]
    two = [json.loads(line) for line in (tmp_path / "two" / "history.jsonl").read_text().splitlines()]
    for h1, h2 in zip(one, two):  # the history's terms are global too
        for key in h1:
            if key.endswith("_rows"):
                assert h1[key] == h2[key], (key, h1, h2)
            elif key not in ("seconds", "epoch") and h1[key] is not None:
                assert abs(h1[key] - h2[key]) <= 1e-4, (key, h1, h2)
