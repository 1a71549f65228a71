"""`cftrain table --seeds` and `cftrain sweep`: means and standard errors against the runs' own
metrics, seeded draws, selection on val only, resuming after a kill."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cfpairs.errors import UserError
from cftrain.presets import resolve
from cftrain.spaces import draw, load_space
from cftrain.sweep import run_sweep
from cftrain.views import summarise
from cftrain.table import run_table
from cftrain.train import run
from tests.helpers import REPO, run_cli, snapshot


def test_table_seeds_rows_are_mean_and_stderr_of_each_seeds_run(stores, tmp_path):
    table = run_table(stores["vector"], tmp_path / "t", modes=["augmented", "gs"], seeds=[0, 1, 2], epochs=2, jobs=1)
    for row in table["rows"]:
        values = [json.loads((tmp_path / "t" / row["mode"] / f"seed-{s}" / "metrics.json").read_text())
                  ["splits"]["val"]["all"]["accuracy"] for s in (0, 1, 2)]
        cell = row["splits"]["val"]["all"]
        assert cell["accuracy"] == pytest.approx(np.mean(values), abs=0.005)
        assert cell["stderr"] == pytest.approx(np.std(values, ddof=1) / math.sqrt(3), abs=0.005)
        assert [r["seed"] for r in row["runs"]] == [0, 1, 2]
        cosines = [json.loads((tmp_path / "t" / row["mode"] / f"seed-{s}" / "metrics.json").read_text())
                   ["alignment"]["val"]["cosine"] for s in (0, 1, 2)]
        assert row["alignment"]["val"]["cosine"] == pytest.approx(np.mean(cosines), abs=1e-4)
    md = (tmp_path / "t" / "table.md").read_text()
    assert "mean ± standard error over seeds 0, 1, 2" in md
    gs = table["rows"][1]["splits"]["val"]["all"]
    assert f"{gs['accuracy']:.1f} ± {gs['stderr']:.1f}" in md
    # a seed's run is the run `cftrain run --seed 1` makes
    alone = run(stores["vector"], tmp_path / "alone", resolve("toy", "vector", mode="gs", epochs=2, seed=1))
    assert alone["splits"] == table["rows"][1]["runs"][1]["splits"]


SPACE = {"lr": {"log_uniform": [0.1, 10.0]}, "gs_weight": {"log_scale": [0.5, 2.0]}, "hidden": [[4], [8, 8]],
         "epochs": {"int": [1, 3]}, "rho": {"uniform": [0.8, 0.95]}}


def test_draws_are_seeded_per_trial_inside_their_specs():
    preset = resolve("toy", "vector")
    assert draw(SPACE, 0, 0, preset) == {}  # trial 0: the preset
    first = [draw(SPACE, t, 7, preset) for t in range(1, 40)]
    assert first == [draw(SPACE, t, 7, preset) for t in range(1, 40)]
    assert first != [draw(SPACE, t, 8, preset) for t in range(1, 40)]
    assert all(0.1 <= d["lr"] <= 10 and 0.5 * preset.gs_weight <= d["gs_weight"] <= 2 * preset.gs_weight
               and d["hidden"] in ([4], [8, 8]) and d["epochs"] in (1, 2, 3) and 0.8 <= d["rho"] <= 0.95
               for d in first)
    assert {d["epochs"] for d in first} == {1, 2, 3}  # int bounds inclusive
    assert np.log([d["lr"] for d in first]).mean() == pytest.approx(0.0, abs=0.6)  # log-uniform around 1


def test_each_option_draws_from_its_own_stream():
    """Adding an option (or a mode whose options join the space) never changes an existing trial's draws."""
    preset = resolve("toy", "vector")
    alone = {"lr": SPACE["lr"]}
    for trial in range(1, 20):
        assert draw(alone, trial, 3, preset)["lr"] == draw(SPACE, trial, 3, preset)["lr"]
        assert draw({"rho": SPACE["rho"]}, trial, 3, preset)["rho"] == draw(SPACE, trial, 3, preset)["rho"]


def test_a_modes_trials_are_the_same_whatever_modes_are_swept_with_it(stores):
    """The issue's case: GS's trial 1 drew {gs_weight 6.018, lr 1.082} alone and {1.301, 1.897} beside
    pair-contrastive, whose options joined the one stream."""
    from cftrain.presets import parts_of, read_by
    from cftrain.spaces import default_space
    from cftrain.sweep import plan_sweep

    def gs_trials(modes):
        presets = [resolve("table", "text", strict=False, mode=m) for m in modes]
        space = default_space("table", set().union(*(read_by(parts_of(p)) for p in presets)))
        jobs = plan_sweep("table", "text", modes, 4, [0], space, 0, {})
        return [job.labels["options"] for job in jobs if job.labels["mode"] == "gs"]

    alone, together = gs_trials(["gs"]), gs_trials(["gs", "pair-contrastive"])
    assert alone == together and any(alone)  # trial 0 is the preset itself: {}


@pytest.mark.parametrize("text, problem", [('{"seed": [1, 2]}', "'seed' is not an option a sweep can vary"),
                                           ('{"colour": [1]}', "'colour' is not an option"),
                                           ('{"lr": {"log_uniform": [0, 1]}}', "lr: a spec is"),
                                           ('{"lr": {"normal": [0, 1]}}', "lr: a spec is"),
                                           ('{"lr": []}', "lr: a spec is"), ("{lr", "not a readable")])
def test_bad_space_files_name_the_file_and_option(tmp_path, text, problem):
    path = tmp_path / "space.json"
    path.write_text(text)
    with pytest.raises(UserError, match=f"{path}: .*{problem}" if "lr" in problem else problem):
        load_space(path)


def test_toml_space(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('batch_size = [16, 32]\n[lr]\nlog_uniform = [0.5, 2.0]\n')
    assert load_space(path) == {"batch_size": [16, 32], "lr": {"log_uniform": [0.5, 2.0]}}


def test_selection_uses_val_only():
    def line(trial, seed, val, test):
        return {"mode": "gs", "trial": trial, "seed": seed, "options": {"lr": trial},
                "splits": {"val": {"all": {"accuracy": val}}, "test": {"all": {"accuracy": test}}}}
    rows = [line(0, 0, 80, 50), line(0, 1, 82, 52), line(1, 0, 79, 99), line(1, 1, 79, 99)]
    summary = summarise("toy", "accuracy", rows, ["gs"], [0, 1], top=5)
    best = summary["modes"]["gs"][0]
    assert best["trial"] == 0 and best["splits"]["val"] == {"mean": 81.0, "stderr": 1.0, "n": 2}
    assert best["splits"]["test"]["mean"] == 51.0


def test_sweep_drops_options_a_mode_does_not_read_and_resumes(stores, tmp_path, monkeypatch):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"log_uniform": [0.5, 2.0]}, "gs_weight": {"log_uniform": [0.1, 10]}}))
    import cftrain.train as train
    calls = []
    real = train.run_into
    monkeypatch.setattr(train, "run_into", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    args = dict(modes=["augmented", "gs"], seeds=[0], space_path=space, jobs=1, epochs=1)
    summary = run_sweep(stores["vector"], tmp_path / "sw", trials=2, **args)
    assert len(calls) == 4
    lines = [json.loads(x) for x in (tmp_path / "sw" / "results.jsonl").read_text().splitlines()]
    assert {tuple(sorted(x["options"])) for x in lines if x["mode"] == "augmented" and x["trial"] == 1} == {("lr",)}
    assert sorted(next(x for x in lines if x["mode"] == "gs" and x["trial"] == 1)["options"]) == ["gs_weight", "lr"]
    assert summary["modes"]["gs"][0]["splits"]["val"]["mean"] == max(x["val"] for x in lines if x["mode"] == "gs")
    # started again: nothing to do; one more trial: only its runs
    run_sweep(stores["vector"], tmp_path / "sw", trials=2, **args)
    assert len(calls) == 4
    run_sweep(stores["vector"], tmp_path / "sw", trials=3, **args)
    assert len(calls) == 6 and {c.lr for c in calls[4:]} == {draw(json.loads(space.read_text()), 2, 0, None)["lr"]}
    # a run directory removed: that run is done again, the others kept; results.jsonl lists every run
    shutil.rmtree(tmp_path / "sw" / "gs" / "trial-2" / "seed-0")
    run_sweep(stores["vector"], tmp_path / "sw", trials=3, **args)
    assert len(calls) == 7 and len((tmp_path / "sw" / "results.jsonl").read_text().splitlines()) == 6


def test_resuming_with_another_space_is_refused(stores, tmp_path):
    space = tmp_path / "space.json"
    space.write_text('{"lr": [1.0]}')
    run_sweep(stores["vector"], tmp_path / "sw", ["augmented"], 2, [0], space_path=space, jobs=1, epochs=1)
    before = snapshot(tmp_path / "sw")
    space.write_text('{"lr": [0.5]}')  # trial 1 now means other options
    with pytest.raises(UserError, match=r"holds a sweep made with other settings \(--lr was 1.0 for "
                                        r"augmented/trial-1/seed-0, now 0.5\)"):
        run_sweep(stores["vector"], tmp_path / "sw", ["augmented"], 2, [0], space_path=space, jobs=1, epochs=1)
    assert snapshot(tmp_path / "sw") == before


@pytest.mark.slow
def test_a_killed_sweep_restarts_where_it_stopped(stores, tmp_path):
    out = tmp_path / "sw"
    command = [sys.executable, "-m", "cli.cftrain", "--quiet", "sweep", str(stores["vector"]), "--out", str(out),
               "--modes", "augmented", "--trials", "4", "--seeds", "0", "--epochs", "40", "--patience", "40",
               "--jobs", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_run = out / "augmented" / "trial-0" / "seed-0" / "metrics.json"
    deadline = time.time() + 120
    while time.time() < deadline and not first_run.exists():
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(p.parent for p in out.rglob("metrics.json"))
    assert 1 <= len(finished) < 4 and not (out / "results.jsonl").exists()
    stamps = {p: (p / "metrics.json").stat().st_mtime_ns for p in finished}
    again = run_cli("cli.cftrain", "--quiet", "sweep", *command[5:])
    assert again.returncode == 0, again.stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    assert {p: (p / "metrics.json").stat().st_mtime_ns for p in finished} == stamps  # not trained again
    assert not [p for p in out.rglob("*.part")]
    assert "trials ranked by mean val accuracy" in again.stdout


def test_sweep_cli_refuses_seed(stores, tmp_path):
    result = run_cli("cli.cftrain", "sweep", str(stores["vector"]), "--out", str(tmp_path / "s"), "--seed", "3")
    assert result.returncode == 2 and "use --seeds" in result.stderr and not (tmp_path / "s").exists()


def test_toml_spaces_read_with_tomli_where_python_has_no_tomllib(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: the same file is read through the tomli package there."""
    pytest.importorskip("tomli")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import tomllib now fails, as on 3.10
    (tmp_path / "space.toml").write_text('lr = {log_uniform = [0.5, 2.0]}\nbatch_size = [16, 32]\n')
    assert load_space(tmp_path / "space.toml") == {"lr": {"log_uniform": [0.5, 2.0]}, "batch_size": [16, 32]}
