"""The Slurm launcher's options, without a cluster: time limits in sbatch's forms, extra sbatch
options, and the refusals made before any work."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cfpairs.errors import UserError
from cftrain.slurm import SlurmSettings, check_cluster, parse_options, parse_time
from cli.cftrain import main


@pytest.mark.parametrize("text, minutes", [("90", 90), ("30:00", 30), ("30:01", 31), ("1:30:00", 90),
                                           ("2-00", 2880), ("1-2:30", 1590), ("0-0:0:1", 1)])
def test_time_limits_in_sbatchs_forms(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("text", ["ninety", "0", "1:2:3:4", "-5"])
def test_bad_time_limits_are_refused(text):
    with pytest.raises(UserError, match="--slurm-time"):
        parse_time(text)


def test_extra_sbatch_options():
    assert parse_options(["account=lab", "--qos=high", "exclusive", "gres = gpu:2"]) == \
        {"account": "lab", "qos": "high", "exclusive": True, "gres": "gpu:2"}
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_options(["=x"])


def test_no_slurm_commands_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="sinfo not found"):
        check_cluster(SlurmSettings())


@pytest.mark.parametrize("args, message", [
    (["--slurm-gpus", "1"], "--slurm-gpus is for --launcher slurm"),
    (["--no-wait"], "--no-wait is for --launcher slurm"),
    (["--launcher", "slurm", "--jobs", "2"], "--jobs is for --launcher local"),
])
def test_options_of_the_other_launcher_are_refused(toy, tmp_path, args, message):
    result = CliRunner().invoke(main, ["table", str(toy), "--out", str(tmp_path / "t"), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("job_id", ["-a", "--user=alice", "12;rm", "", "12_x"])
def test_a_job_list_from_elsewhere_is_checked(tmp_path, job_id):
    """slurm.json travels with a campaign folder: a job id that is not what sbatch gives (an option
    of squeue or scancel, say) is refused naming the file, before any Slurm command sees it."""
    import json
    from cftrain.slurm import SlurmLauncher
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps({"runs": {"augmented": {"job_id": job_id, "attempts": 1}}}))
    with pytest.raises(UserError, match="slurm.json: not the job list"):
        SlurmLauncher._read_state(path)


def test_cancel_touches_only_this_commands_runs(monkeypatch):
    """Ctrl-C cancels the jobs of the runs this command manages, not every id its folder lists."""
    import cftrain.slurm as slurm
    called = []
    monkeypatch.setattr(slurm, "_run", lambda command: called.append(command))
    launcher = slurm.SlurmLauncher(SlurmSettings())
    launcher.args = {"augmented": (), "gs": ()}
    launcher.state = {"augmented": {"job_id": "41_0", "attempts": 1}, "gs": {"job_id": "41_1", "attempts": 1},
                      "someone-else": {"job_id": "7", "attempts": 1}}
    launcher.cancel()
    assert called == [["scancel", "41"]]


def test_collect_says_which_runs_are_still_queued_or_running(work, tmp_path, monkeypatch):
    """A Slurm campaign collected before its jobs end: the view shows the finished runs and says the rest."""
    import json
    import os
    from tests.helpers import ok
    out = tmp_path / "t"
    ok("cftrain", ["table", work / "toy.h5", "--out", out, "--modes", "augmented,gs", "--epochs", "1", "--jobs", "1"])
    import shutil
    shutil.rmtree(out / "gs")  # its job is still queued
    (out / "slurm.json").write_text(json.dumps({"runs": {"augmented": {"job_id": "41", "attempts": 1},
                                                         "gs": {"job_id": "42_1", "attempts": 1}}}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\necho '42_1|PENDING'\n")
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    from click.testing import CliRunner
    from tests.helpers import cli_main
    shown = CliRunner().invoke(cli_main("cftrain"), ["collect", str(out), "--view", "table"])
    assert shown.exit_code == 0, shown.stderr
    assert "1 run(s) of this campaign are not finished on Slurm (1 pending; jobs 42)" in shown.stderr
    assert "With edited data (augmentation)" in shown.stdout and "GS" not in shown.stdout.split("| method")[1]
    (bin_dir / "squeue").unlink()
    monkeypatch.setenv("PATH", str(bin_dir))
    shown = CliRunner().invoke(cli_main("cftrain"), ["collect", str(out), "--view", "table"])
    assert "no squeue here to ask their state" in shown.stderr
