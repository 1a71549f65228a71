"""`cftrain curve` (nested subsets, summary by hand, picture) and `cftrain report`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cftrain.curve import parse_fractions
from cftrain.presets import resolve
from cftrain.train import run
from tests.helpers import run_cli


def test_parse_fractions():
    assert parse_fractions("1/2, 1/8,1/1,0.25") == [0.125, 0.25, 0.5, 1.0]
    from cfpairs.errors import UserError
    for bad in ("0,1", "3/2", "a/b", ""):
        with pytest.raises(UserError):
            parse_fractions(bad)


def test_curve_directory_summary_and_picture(stores, tmp_path):
    out = tmp_path / "curve"
    result = run_cli("cftrain", "curve", str(stores["vector"]), "--out", str(out), "--fractions", "1/4,1/1",
                     "--modes", "original,gs", "--seeds", "0,1", "--epochs", "2", "--quiet", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    curve = json.loads((out / "curve.json").read_text())
    assert curve["split"] == "test" and curve["metric"] == "accuracy" and len(curve["points"]) == 8
    for point in curve["points"]:
        metrics = json.loads((out / point["run"] / "metrics.json").read_text())
        config = json.loads((out / point["run"] / "config.json").read_text())
        assert point["value"] == metrics["splits"]["test"]["all"]["accuracy"]
        assert (config["mode"], config["fraction"], config["seed"], config["fraction_seed"]) == \
            (point["mode"], point["fraction"], point["seed"], point["seed"])
    for mode in ("original", "gs"):
        for row in curve["summary"][mode]:
            values = [p["value"] for p in curve["points"] if p["mode"] == mode and p["fraction"] == row["fraction"]]
            assert row["mean"] == pytest.approx(np.mean(values), abs=0.01)
            assert row["stderr"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(2), abs=0.01)
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "curve.md").read_text()
    assert "| fraction | original | gs |" in table and "| 1/4 |" in table and table.strip() in result.stdout


def test_curve_subsets_are_the_same_for_every_mode(stores, tmp_path, monkeypatch):
    import cftrain.train as train

    seen = {}
    real = train.fit

    def spy(parts, store, splits, **kwargs):
        from cftrain.data import group_subset
        config = parts.config
        part = group_subset(splits["train"], config.fraction, config.fraction_seed)
        seen[(config.mode, config.fraction)] = sorted(part.inputs["x"][:, 0].tolist())
        return real(parts, store, splits, **kwargs)

    monkeypatch.setattr(train, "fit", spy)
    from cftrain.curve import run_curve
    run_curve(stores["vector"], tmp_path / "c", [0.25, 1.0], ["original", "augmented"], [3], epochs=1, jobs=1)
    assert seen[("original", 0.25)] == seen[("augmented", 0.25)]
    assert set(seen[("original", 0.25)]) < set(seen[("original", 1.0)])


def test_report_compares_runs(stores, tmp_path):
    for mode in ("augmented", "gs"):
        run(stores["vector"], tmp_path / mode, resolve("toy", mode=mode, epochs=2))
    result = run_cli("cftrain", "report", str(tmp_path / "augmented"), str(tmp_path / "gs"),
                     "--out", str(tmp_path / "report.md"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "report.md").read_text()
    differing = next(line for line in text.splitlines() if line.startswith("| run |")).split("|")[2:-1]
    assert "mode" in [c.strip() for c in differing] and "| gs | " in text  # the options that differ, gs's row
    gs = json.loads((tmp_path / "gs" / "metrics.json").read_text())
    section = text.split("## Metrics")[1].split("##")[0].splitlines()
    header = [c.strip() for c in next(line for line in section if line.startswith("| run")).split("|")[1:-1]]
    row = [c.strip() for c in next(line for line in section if line.startswith("| gs ")).split("|")[1:-1]]
    assert row[header.index("test all")] == f"{gs['splits']['test']['all']['accuracy']:.1f}"
    assert row[header.index("best epoch")] == str(gs["best_epoch"])
    assert row[header.index("store")] == gs["store_digest"][:8]  # verified as it was loaded: no "(not verified)"
    assert f"| gs | {gs['alignment']['train']['cosine']:.3f} | {gs['alignment']['val']['cosine']:.3f} |" in text
    assert "![history of gs](gs/history.png)" in text
