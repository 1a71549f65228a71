"""Outputs you can trust, rules 3 to 6: folders being written are locked, campaigns resume by
identity (not by spelling), workers die with their parent, full disks and file-size limits are
clean one-line errors that leave nothing."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfpairs.outputs import OutputLock
from tests.helpers import QUICK, REPO, ok, refused, run_cli, snapshot


# ---------------------------------------------------------------- rule 3: locks

def test_a_folder_being_written_is_locked(here):
    lock = OutputLock(here / "t").acquire()
    try:
        refused("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance"],
                f"--out t: another process (pid {os.getpid()}) is writing it", out=here / "t")
        refused("cfbuild", ["toy", "--out", "t", "--n", "20"], "another process", out=here / "t")
    finally:
        lock.release()
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance"])
    assert not (here / ".t.lock").exists()


@pytest.mark.e2e
def test_a_second_sweep_on_one_folder_is_refused_and_a_killed_one_frees_it(work, tmp_path):
    args = ["sweep", str(work / "toy.h5"), "--out", str(tmp_path / "sw"), "--modes", "augmented", "--trials", "2",
            "--seeds", "0", "--jobs", "1"]
    first = subprocess.Popen([sys.executable, "-m", "cli.cftrain", "--quiet", *args, "--epochs", "100000",
                              "--patience", "100000"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / ".sw.lock").exists():
        time.sleep(0.05)
    second = run_cli("cli.cftrain", *args, "--epochs", "1")
    assert second.returncode == 2 and f"another process (pid {first.pid}) is writing it" in second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait()
    third = run_cli("cli.cftrain", "--quiet", *args, "--epochs", "1")
    assert third.returncode == 0, third.stderr
    assert len((tmp_path / "sw" / "results.jsonl").read_text().splitlines()) == 2


# ---------------------------------------------------------------- rule 4: resume by identity

def _stamps(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("metrics.json")}


def test_a_table_resumes_whatever_the_spelling_jobs_threads_or_device(here, tmp_path_factory):
    args = ["--modes", "chance,augmented", "--seeds", "0,1", *QUICK]
    ok("cftrain", ["table", "toy.h5", "--out", "t", *args, "--jobs", "1"])
    stamps = _stamps(here / "t")
    (here / "links").mkdir()
    (here / "links" / "same.h5").symlink_to(here / "toy.h5")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    shutil.copy(here / "toy.h5", elsewhere / "copy.h5")  # another path, the same content digest
    for store, extra in ((here / "toy.h5", ["--jobs", "2"]), ("links/same.h5", ["--threads", "2"]),
                         (elsewhere / "copy.h5", ["--device", "cpu"])):
        ok("cftrain", ["table", store, "--out", here / "t", *args, *extra])
    assert _stamps(here / "t") == stamps  # nothing trained again


def test_a_table_with_other_options_is_refused_until_force(here):
    args = ["--modes", "augmented", *QUICK]
    ok("cftrain", ["table", "toy.h5", "--out", "t", *args])
    refused("cftrain", ["table", "toy.h5", "--out", "t", *args, "--lr", "0.5"],
            "--out t" if False else "t: holds a table made with other settings (--lr was 1.0 for augmented, now 0.5)",
            "--force to start again", out=here / "t")
    ok("cftrain", ["table", "toy.h5", "--out", "t", *args, "--lr", "0.5", "--force"])
    assert json.loads((here / "t" / "augmented" / "config.json").read_text())["lr"] == 0.5


def test_a_table_of_another_store_content_is_refused(here):
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance"])
    ok("cfbuild", ["toy", "--out", "other.h5", "--n", "200", "--seed", "1"])
    refused("cftrain", ["table", "other.h5", "--out", "t", "--modes", "chance"],
            "made with other settings (the store's content was", out=here / "t")


def test_more_seeds_add_only_their_runs_and_collect_renders_the_union(here):
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "augmented", "--seeds", "0", *QUICK])
    stamps = _stamps(here / "t")
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "augmented", "--seeds", "0,1", *QUICK])
    assert {k: v for k, v in _stamps(here / "t").items() if k in stamps} == stamps and len(_stamps(here / "t")) == 2
    table = json.loads((here / "t" / "table.json").read_text())
    assert [r["seed"] for r in table["rows"][0]["runs"]] == [0, 1]


# ---------------------------------------------------------------- rule 5: workers die with their parent

def _children(pid: int) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
@pytest.mark.parametrize("command", ["table", "curve"])
def test_kill_9_of_a_jobs_2_parent_takes_its_workers_along(work, tmp_path, command):
    extra = ["--modes", "augmented,gs"] if command == "table" else ["--modes", "augmented,gs", "--fractions", "1",
                                                                      "--seeds", "0"]
    parent = subprocess.Popen([sys.executable, "-m", "cli.cftrain", command, str(work / "toy.h5"), "--out",
                               str(tmp_path / "c"), "--jobs", "2", "--epochs", "100000", "--patience", "100000",
                               *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = [p for p in _children(parent.pid) if "_worker_loop" in _cmdline(p) or "multiprocessing" in _cmdline(p)]
        time.sleep(0.1)
    assert len(workers) >= 2, _children(parent.pid)
    time.sleep(1.0)  # training has started in both
    parent.kill()
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "a worker outlived its parent by 5 s"
    output = parent.stdout.read()
    assert "Traceback" not in output, output


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# ---------------------------------------------------------------- rule 6: full disks and file-size limits

def _limited(kilobytes: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (kilobytes * 1024, resource.RLIM_INFINITY))
    return limit


@pytest.mark.parametrize("args,kilobytes", [(["cfbuild", "toy", "--n", "100000"], 512),
                                            (["cftrain", "run", "{toy}", "--epochs", "1"], 8),
                                            (["cfbuild", "export", "{toy}", "--to", "parquet"], 512)])
@pytest.mark.e2e
def test_a_file_size_limit_is_one_line_and_leaves_nothing(work, tmp_path, args, kilobytes):
    big = tmp_path / "big.h5"
    run_cli("cfbuild", "toy", "--out", str(big), "--n", "100000")  # written before the limit
    out = tmp_path / "out"
    command = [a.format(toy=big) for a in args]
    command += [str(out)] if command[1] == "export" else ["--out", str(out)]
    before = snapshot(tmp_path)
    result = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True,
                            preexec_fn=_limited(kilobytes))
    assert result.returncode == 1, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1], result.stderr
    assert "cannot be written: File too large" in errors[0] and str(out) in errors[0]
    assert snapshot(tmp_path) == before and not list(tmp_path.glob(".*"))


@pytest.mark.e2e
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (disk / "keep.txt").write_text("mine")
        result = run_cli("cfbuild", "toy", "--out", str(disk / "big.h5"), "--n", "100000")
        assert result.returncode == 1 and "No space left on device" in result.stderr, result.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["keep.txt"]
    finally:
        subprocess.run(["umount", str(disk)])
