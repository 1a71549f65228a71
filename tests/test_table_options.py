"""A table folder grows by seeds, modes and transfer sets; a table command with other training
options is another table (refused, naming the option), and no run is ever written inside another."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ok, refused, snapshot

QUICK = ["--epochs", "1", "--jobs", "1"]


def test_a_table_with_seeds_never_writes_inside_the_runs_of_one_without(stores, tmp_path):
    out, toy = tmp_path / "t", stores["vector"]
    ok("cftrain", ["table", toy, "--out", out, "--modes", "augmented", *QUICK])
    refused("cftrain", ["table", toy, "--out", out, "--modes", "augmented", "--seeds", "0", *QUICK],
            "augmented is a run of this table", "augmented/seed-0", out=out)


def test_a_table_with_other_training_options_is_refused_naming_them(stores, tmp_path):
    out, toy = tmp_path / "t", stores["vector"]
    ok("cftrain", ["table", toy, "--out", out, "--modes", "augmented", "--seeds", "0", *QUICK])
    refused("cftrain", ["table", toy, "--out", out, "--modes", "augmented,gs", "--seeds", "0,1", "--epochs", "2",
                        "--jobs", "1"], "--epochs was 1", "now 2", out=out)
    refused("cftrain", ["table", toy, "--out", out, "--modes", "gs", "--seeds", "0", "--lr", "0.5", "--epochs", "1"],
            "--lr was 1.0", out=out)


def test_a_table_grows_by_seeds_and_modes(stores, tmp_path):
    out, toy = tmp_path / "t", stores["vector"]
    ok("cftrain", ["table", toy, "--out", out, "--modes", "augmented", "--seeds", "0", *QUICK])
    before = snapshot(out / "augmented" / "seed-0")
    ok("cftrain", ["table", toy, "--out", out, "--modes", "augmented,gs", "--seeds", "0,1", *QUICK])
    assert snapshot(out / "augmented" / "seed-0") == before  # kept, not trained again
    rows = json.loads((out / "table.json").read_text())["rows"]
    assert [(r["mode"], r["best_epoch"]) for r in rows] == [("augmented", [1, 1]), ("gs", [1, 1])]


@pytest.mark.e2e  # two processes
def test_a_parallel_table_shows_each_runs_epochs_as_they_come(toy, tmp_path):
    from tests.helpers import run_cli
    shown = run_cli("cli.cftrain", "table", str(toy), "--out", str(tmp_path / "t"), "--modes", "augmented,gs",
                    "--epochs", "3", "--patience", "3", "--jobs", "2", real=True)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stderr.splitlines()
    for run in ("augmented", "gs"):
        epochs = [line for line in lines if line.startswith(f"{run}: toy {run}: ") and " epochs" in line]
        assert [line.split(": ")[2].split(" ")[0] for line in epochs] == ["1/3", "2/3", "3/3"], lines
    first_done = next(i for i, line in enumerate(lines) if "1/2 runs" in line)
    assert any(line.startswith(("augmented: ", "gs: ")) for line in lines[:first_done])  # never silent until then


def test_a_default_table_says_which_modes_it_leaves_out_and_why(stores, tmp_path, capsys):
    from cftrain.table import plan_table
    from cftrain.methods import METHODS
    jobs = plan_table("toy", "vector", None, None, {"epochs": 1})
    err = capsys.readouterr().err
    assert "pair-contrastive" not in [j.config.mode for j in jobs] and "pair-contrastive" in METHODS
    assert "the table leaves out pair-contrastive: --mode pair-contrastive: model mlp encodes" in err
