"""Signals, stale outputs, and the command line itself: SIGTERM and SIGKILL mid-build and
mid-training, `--debug` anywhere, `verify` on stderr, `--version`, progress lines in logs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cftrain.presets import resolve
from cftrain.train import run
from tests.helpers import REPO, flip_first_chunk_byte, run_cli

def _wait_for(pattern_dir: Path, pattern: str, proc, seconds: float = 60):
    deadline = time.time() + seconds
    while time.time() < deadline and not list(pattern_dir.glob(pattern)) and proc.poll() is None:
        time.sleep(0.05)
    assert list(pattern_dir.glob(pattern)), "the command never started writing"

pytestmark = pytest.mark.e2e  # real processes: signals, torchrun, `python -m`


def test_sigterm_during_a_build(tmp_path):
    out = tmp_path / "big.h5"
    proc = subprocess.Popen([sys.executable, "-m", "cfbuild", "toy", "--out", str(out), "--n", "3000000"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path, ".big.h5.*.part", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "cfbuild: terminated", err
    assert not out.exists() and not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


def test_sigterm_during_training(work, tmp_path):
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "cftrain", "run", str(work / "toy.h5"), "--out", str(out),
                             "--epochs", "100000", "--patience", "100000"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(tmp_path, ".r.*.part/history.jsonl", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "cftrain: terminated", err
    assert not out.exists() and not list(tmp_path.glob(".r.*"))


_AT_THE_THIRD_BATCH = """
import os, signal, sys
import cftrain.train
from cli.cftrain import main
real_to_device, batches = cftrain.train.to_device, []

def to_device(batch, device):
    batches.append(1)
    if len(batches) == 3:
        at_the_third_batch()
    return real_to_device(batch, device)

{probe}
cftrain.train.to_device = to_device
sys.argv[0] = "cftrain"
main()
"""

_CTRL_C_IN_AN_EXEC = """
def at_the_third_batch():  # Ctrl-C lands in code run by an exec of a string (as in dataclasses)
    exec("os.kill(os.getpid(), signal.SIGINT)\\nfor i in range(100): pass", {"os": os, "signal": signal})
"""

_SIGTERM_IN_A_BARE_EXCEPT = """
class SignalOnGmpy:  # SIGTERM while mpmath tries `import gmpy2` inside its bare `except: pass`
    def find_spec(self, name, path=None, target=None):
        if name == "gmpy2":
            print("probe: SIGTERM in mpmath's import of gmpy2", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            for i in range(100): pass
        return None

def at_the_third_batch():  # mpmath imported afresh (torch imports it lazily, via sympy, in a run)
    for name in [n for n in sys.modules if n == "mpmath" or n.startswith("mpmath.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, SignalOnGmpy())
    try:
        import mpmath
    finally:
        sys.meta_path.pop(0)
"""


def _run_probe(tmp_path, probe: str, store: Path):
    """`python -m` (as `python -m cftrain`) of a `cftrain run` whose third batch runs `probe`."""
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "third_batch_probe.py").write_text(_AT_THE_THIRD_BATCH.replace("{probe}", probe))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "third_batch_probe", "run", str(store), "--out", str(tmp_path / "r"),
                           "--epochs", "1000", "--patience", "1000"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


def test_ctrl_c_inside_an_exec_still_exits_130(work, tmp_path):
    # under -m, CPython ends the process by SIGINT after a bare KeyboardInterrupt left an exec,
    # whatever exit code the program chose
    result = _run_probe(tmp_path, _CTRL_C_IN_AN_EXEC, work / "toy.h5")
    assert result.returncode == 130 and result.stderr.strip().splitlines()[-1] == "cftrain: interrupted", result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe"]


def test_sigterm_swallowed_by_a_library_still_stops_training(work, tmp_path):
    # what CI once saw: SIGTERM landed in mpmath's bare `except:` and training went on
    result = _run_probe(tmp_path, _SIGTERM_IN_A_BARE_EXCEPT, work / "toy.h5")
    lines = result.stderr.strip().splitlines()
    assert "probe: SIGTERM in mpmath's import of gmpy2" in lines, result.stderr  # the signal was sent there
    assert result.returncode == 143 and lines[-1] == "cftrain: terminated", result.stderr
    assert not [line for line in lines if "epochs" in line]  # stopped within the first epoch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe"]


def test_sigkill_leaves_only_a_part_that_the_next_run_removes(work, tmp_path):
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "cftrain", "run", str(work / "toy.h5"), "--out", str(out),
                             "--epochs", "100000", "--patience", "100000"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(tmp_path, ".r.*.part/history.jsonl", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and len(list(tmp_path.glob(".r.*.part"))) == 1
    run(work / "toy.h5", out, resolve("toy", mode="augmented", epochs=1))
    assert out.is_dir() and not list(tmp_path.glob(".r.*.part"))


def test_stale_store_part_of_a_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".s.h5.999999999.abcd.part"  # no such pid
    stale.write_bytes(b"half a store")
    assert run_cli("cfbuild", "toy", "--out", str(tmp_path / "s.h5"), "--n", "20").returncode == 0
    assert not stale.exists()


# ---------------------------------------------------------------- the command line itself

def test_debug_after_the_subcommand_shows_the_traceback(tmp_path):
    result = run_cli("cfbuild", "inspect", str(tmp_path / "missing.h5"), "--debug", real=True)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_verify_failure_goes_to_stderr(work, tmp_path):
    shutil.copy(work / "toy.h5", tmp_path / "d.h5")
    flip_first_chunk_byte(tmp_path / "d.h5", "train/examples/x")
    result = run_cli("cfbuild", "verify", str(tmp_path / "d.h5"))
    assert result.returncode == 1 and result.stdout == "" and result.stderr.startswith("FAILED: ")


@pytest.mark.parametrize("program", ["cfbuild", "cftrain"])
def test_version_and_python_dash_m(program):
    from cfbuild import __version__
    result = run_cli(program, "--version", real=True)
    assert result.returncode == 0 and result.stdout.strip() == f"{program}, version {__version__}"


def test_progress_lines_in_a_log_and_quiet(work, tmp_path):
    args = ["cftrain", "run", str(work / "toy.h5"), "--epochs", "3", "--patience", "5"]
    logged = run_cli(*args, "--out", str(tmp_path / "a"))
    assert logged.returncode == 0, logged.stderr
    epochs = [line for line in logged.stderr.splitlines() if line.startswith("toy gs: ")]
    assert [line.split()[2] for line in epochs] == ["1/3", "2/3", "3/3"] and "val=" in epochs[0]
    quiet = run_cli(*args, "--out", str(tmp_path / "b"), "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""
