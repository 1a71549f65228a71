"""`--launcher inline` runs in this process (tests/test_launchers.py compares its table with local's)."""

import os

from cftrain.launchers import make_launcher
from cftrain.table import run_table


def test_inline_runs_in_this_process(stores, tmp_path, monkeypatch):
    import cftrain.campaign_run as campaign_run
    pids = []
    real = campaign_run.run_job
    monkeypatch.setattr(campaign_run, "run_job", lambda *a: pids.append(os.getpid()) or real(*a))
    run_table(stores["vector"], tmp_path / "t", modes=["chance", "augmented"], epochs=1,
              launcher=make_launcher("inline", "table"))
    assert pids == [os.getpid()] * 2
