"""`--launcher slurm` against a real single-node Slurm cluster (tests/slurm_cluster.py): the same
table.json as --jobs 1, --no-wait then collect, a killed job submitted once more, a job failing
twice shown with its log, the folder lock, scancel leaving nothing behind, one-line refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import slurm_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_cluster.missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the Slurm tests (.ci/run installs slurm-wlm and munge)")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    env = slurm_cluster.start(root)
    yield env
    slurm_cluster.stop(root, env)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from cfbuild.builders.toy import build_toy
    path = tmp_path_factory.mktemp("toy") / "toy.h5"
    build_toy(path, n=300, seed=0)
    return path


def cftrain(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cftrain", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def start(env, *args):
    return subprocess.Popen([sys.executable, "-m", "cftrain", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def squeue(env) -> dict:
    out = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i|%T"], env=env, capture_output=True,
                         text=True).stdout
    return dict(line.split("|") for line in out.split())


def wait_for(condition, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def job_ids(folder: Path) -> dict:
    return {run: entry["job_id"] for run, entry in json.loads((folder / "slurm.json").read_text())["runs"].items()}


TABLE = ["--modes", "augmented,gs", "--seeds", "0,1", "--epochs", 2]


def test_a_slurm_table_equals_the_local_one(cluster, toy, tmp_path):
    local = cftrain(cluster, "table", toy, "--out", tmp_path / "local", *TABLE, "--jobs", 1)
    assert local.returncode == 0, local.stderr
    done = cftrain(cluster, "table", toy, "--out", tmp_path / "slurm", *TABLE, "--launcher", "slurm",
                   "--slurm-time", "10", "--slurm-cpus", 1, "--slurm-mem", "500M")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "slurm" / "table.json").read_text()) == \
        json.loads((tmp_path / "local" / "table.json").read_text())
    folder = tmp_path / "slurm"
    for run in job_ids(folder):  # each job's log beside its run folder; submitit's work folder gone
        assert "slurm.err" in {p.name.split(".", 1)[1] for p in (folder / run).parent.glob(f"{Path(run).name}.*")}
    assert not (folder / ".slurm.part").exists()
    assert len({job.split("_")[0] for job in job_ids(folder).values()}) == 1  # one job array
    curve_args = ["--modes", "gs", "--fractions", "1/2,1/1", "--seeds", 0, "--epochs", 2]
    local = cftrain(cluster, "curve", toy, "--out", tmp_path / "curve-local", *curve_args, "--jobs", 1)
    slurm = cftrain(cluster, "curve", toy, "--out", tmp_path / "curve-slurm", *curve_args, "--launcher", "slurm")
    assert local.returncode == 0 and slurm.returncode == 0, slurm.stderr
    assert json.loads((tmp_path / "curve-slurm" / "curve.json").read_text()) == \
        json.loads((tmp_path / "curve-local" / "curve.json").read_text())


def test_no_wait_returns_and_the_same_command_collects(cluster, toy, tmp_path):
    args = ["table", toy, "--out", tmp_path / "t", "--modes", "augmented", "--seeds", "0,1", "--epochs", 2,
            "--launcher", "slurm"]
    submitted = cftrain(cluster, *args, "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    assert "submitted 2 run(s)" in submitted.stdout and not (tmp_path / "t" / "table.json").exists()
    before = job_ids(tmp_path / "t")
    collected = cftrain(cluster, *args)
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "t" / "table.json").is_file() and job_ids(tmp_path / "t") == before  # nothing resubmitted


def test_local_runs_wait_for_the_campaigns_slurm_jobs(cluster, toy, tmp_path):
    args = ["table", toy, "--out", tmp_path / "t", "--modes", "augmented", "--epochs", 2]
    submitted = cftrain(cluster, *args, "--launcher", "slurm", "--no-wait", "--slurm-option", "begin=now+120")
    assert submitted.returncode == 0, submitted.stderr
    local = cftrain(cluster, *args)
    assert local.returncode == 2 and "still queued or running" in local.stderr
    job = next(iter(job_ids(tmp_path / "t").values()))
    subprocess.run(["scancel", job.split("_")[0]], env=cluster, check=True)
    assert not (tmp_path / "t" / "augmented").exists()


def test_a_killed_job_is_submitted_once_more(cluster, toy, tmp_path):
    folder = tmp_path / "t"
    first = start(cluster, "table", toy, "--out", folder, "--modes", "augmented", "--epochs", 3000, "--patience", 3000,
                  "--launcher", "slurm")
    assert wait_for(lambda: (folder / "slurm.json").is_file() and
                    squeue(cluster).get(next(iter(job_ids(folder).values()))) == "RUNNING")
    job = next(iter(job_ids(folder).values()))
    assert wait_for(lambda: _processes_of(folder), 60)
    time.sleep(2)  # the run is under way; its process dies as on a lost node (scancel would be a cancel)
    for line in _processes_of(folder):
        os.kill(int(line.split()[0]), signal.SIGKILL)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert "submitting it once more" in err
    entry = json.loads((folder / "slurm.json").read_text())["runs"]["augmented"]
    assert entry["attempts"] == 2 and entry["job_id"] != job and (folder / "table.json").is_file()


def test_a_job_failing_twice_stops_the_command_with_its_log(cluster, toy, tmp_path):
    store = tmp_path / "toy.h5"
    store.write_bytes(toy.read_bytes())
    folder = tmp_path / "t"
    first = start(cluster, "table", store, "--out", folder, "--modes", "augmented", "--epochs", 2,
                  "--launcher", "slurm", "--slurm-option", "begin=now+4")
    assert wait_for(lambda: (folder / "slurm.json").is_file(), 60)
    store.write_bytes(b"no longer a store")  # every attempt of the job now fails to open it
    out, err = first.communicate(timeout=600)
    assert first.returncode == 1, err
    assert "submitting it once more" in err and "1 Slurm job(s) ended without their run: augmented" in err
    assert "augmented | " in err and "toy.h5" in err  # the log's last lines, naming the store
    assert (folder / "augmented.slurm.err").is_file() and not (folder / "augmented").exists()


def test_the_lock_refuses_a_second_submission_and_scancel_leaves_nothing(cluster, toy, tmp_path):
    folder = tmp_path / "t"
    args = ["table", toy, "--out", folder, "--modes", "augmented", "--epochs", 3000, "--patience", 3000,
            "--launcher", "slurm"]
    first = start(cluster, *args)
    assert wait_for(lambda: (folder / "slurm.json").is_file() and
                    squeue(cluster).get(next(iter(job_ids(folder).values()))) == "RUNNING")
    second = cftrain(cluster, *args)
    assert second.returncode == 2 and "another process" in second.stderr and "is writing it" in second.stderr
    job = next(iter(job_ids(folder).values()))
    time.sleep(2)
    subprocess.run(["scancel", job.split("_")[0]], env=cluster, check=True)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 1 and "(cancelled)" in err and "submit them" in err
    assert wait_for(lambda: squeue(cluster).get(job) not in ("RUNNING", "COMPLETING", "PENDING"), 60)
    assert wait_for(lambda: not _processes_of(folder), 60), _processes_of(folder)
    assert not (folder / "augmented").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part") and p.name != ".slurm.part"]


def test_stopping_the_waiting_command_cancels_its_jobs(cluster, toy, tmp_path):
    folder = tmp_path / "t"
    first = start(cluster, "table", toy, "--out", folder, "--modes", "augmented", "--epochs", 3000, "--patience",
                  3000, "--launcher", "slurm")
    assert wait_for(lambda: (folder / "slurm.json").is_file() and
                    squeue(cluster).get(next(iter(job_ids(folder).values()))) == "RUNNING")
    job = next(iter(job_ids(folder).values()))
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 143 and f"cancelled Slurm job(s) {job.split('_')[0]}" in err
    assert wait_for(lambda: squeue(cluster).get(job) == "CANCELLED", 60)
    assert wait_for(lambda: not _processes_of(folder), 60)


def _processes_of(folder: Path) -> list:
    found = subprocess.run(["pgrep", "-af", "submitit"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in found if str(folder) in line]


def test_a_missing_partition_or_a_refused_option_is_one_line(cluster, toy, tmp_path):
    missing = cftrain(cluster, "table", toy, "--out", tmp_path / "a", "--launcher", "slurm", "--slurm-partition",
                      "gpu-a100")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "--slurm-partition gpu-a100: no such partition (this cluster has debug)" in missing.stderr
    refused = cftrain(cluster, "table", toy, "--out", tmp_path / "b", "--modes", "augmented", "--launcher", "slurm",
                      "--slurm-option", "no-such-sbatch-option=1")
    assert refused.returncode == 2 and "Slurm refused the submission" in refused.stderr, refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    assert not (tmp_path / "b" / "augmented").exists()
