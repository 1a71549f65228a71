"""Every script in bench/ still runs (`--smoke`: tiny sizes, seconds), so the scripts behind the
documented figures cannot rot; each prints key=value lines ending with a ratio or seconds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

SCRIPTS = sorted(p.name for p in (REPO / "bench").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_bench_script_runs_in_smoke_mode(script, tmp_path):
    args = ["--out", str(tmp_path / "out")] if script == "synthetic_tables.py" else []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, str(REPO / "bench" / script), "--smoke", *args], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    if script != "synthetic_tables.py":  # it writes tables, not figures
        last = result.stdout.strip().splitlines()[-1]
        assert last.split()[-1].split("=")[0] in ("ratio", "seconds", "peak_rss_mb") or last.startswith("n="), last


@pytest.mark.e2e
def test_the_reproduction_script_runs_in_smoke_mode(tmp_path):
    env = dict(os.environ, SMOKE="1", BIN=str(REPO / ".venv" / "bin") if (REPO / ".venv").is_dir() else
               os.path.dirname(sys.executable))
    cad = os.environ.get("CFPAIRS_CAD_DIR", str(REPO.parent / "shared" / "data" / "cad"))
    if not os.path.isdir(os.path.join(cad, "sentiment")):
        pytest.skip(f"the CAD release is not at {cad} (CFPAIRS_CAD_DIR)")
    result = subprocess.run(["bash", str(REPO / "bench" / "reproduce_text.sh"), cad, str(tmp_path / "text")],
                            cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "text" / "imdb-table" / "table.md").is_file()
