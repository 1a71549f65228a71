"""cfbuild's command line: usage errors, atomic output, the toy store."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cfpairs.store import Store
from tests.helpers import REPO, run_cli


def test_usage_errors_exit_2_with_one_line(tmp_path):
    cases = [
        (["toy"], "Missing option '--out'"),
        (["toy", "--out", str(tmp_path / "nodir" / "t.h5")], "does not exist"),
        (["inspect", str(tmp_path / "absent.h5")], "does not exist"),
        (["toy", "--out", str(tmp_path / "t.h5"), "--spurious", "2"], "--spurious"),
    ]
    for args, message in cases:
        result = run_cli("cli.cfbuild", *args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.e2e  # a real process (python -m, a signal)
def test_debug_shows_traceback(tmp_path):
    (tmp_path / "junk.h5").write_text("junk")
    result = run_cli("cli.cfbuild", "--debug", "inspect", str(tmp_path / "junk.h5"), real=True)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_existing_store_needs_force(tmp_path):
    out = tmp_path / "t.h5"
    assert run_cli("cli.cfbuild", "toy", "--out", str(out), "--n", "50").returncode == 0
    again = run_cli("cli.cfbuild", "toy", "--out", str(out), "--n", "60")
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("cli.cfbuild", "toy", "--out", str(out), "--n", "60", "--force").returncode == 0
    with Store(out) as store:
        assert store.build["parameters"]["n"] == 60


def kill_mid_build(out, *extra):
    """Start a large toy build into `out`, SIGKILL it once its .part file exists; assert it was killed."""
    proc = subprocess.Popen([sys.executable, "-m", "cli.cfbuild", "toy", "--out", str(out), "--n", "3000000",
                             *extra], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.parent.glob(f".{out.name}.*.part")):
        time.sleep(0.05)
    assert list(out.parent.glob(f".{out.name}.*.part")), "the build never started writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed mid-build, not finished


@pytest.mark.e2e  # a real process (python -m, a signal)
def test_sigkill_during_build_leaves_no_output(tmp_path):
    kill_mid_build(tmp_path / "big.h5")
    assert not (tmp_path / "big.h5").exists()


@pytest.mark.e2e  # a real process (python -m, a signal)
def test_sigkill_while_replacing_keeps_the_old_store(tmp_path):
    out = tmp_path / "t.h5"
    assert run_cli("cli.cfbuild", "toy", "--out", str(out), "--n", "50").returncode == 0
    before = out.read_bytes()
    kill_mid_build(out, "--force")
    assert out.read_bytes() == before


def test_toy_is_deterministic_and_verifies(tmp_path):
    for name in ("a.h5", "b.h5"):
        assert run_cli("cli.cfbuild", "toy", "--out", str(tmp_path / name), "--n", "300", "--seed", "3").returncode == 0
    run_cli("cli.cfbuild", "toy", "--out", str(tmp_path / "c.h5"), "--n", "300", "--seed", "4")
    digests = [Store(tmp_path / n).digest for n in ("a.h5", "b.h5", "c.h5")]
    assert digests[0] == digests[1] != digests[2]
    verify = run_cli("cli.cfbuild", "verify", str(tmp_path / "a.h5"))
    assert verify.stdout.strip() == "ok"


def test_toy_pairs_change_only_the_causal_part(tmp_path):
    from cfbuild.builders.toy import build_toy

    build_toy(tmp_path / "t.h5", n=4000, seed=0, spurious=0.9)
    with Store(tmp_path / "t.h5") as store:
        for name, agree in (("train", 0.9), ("val", 0.9), ("test", 0.5), ("test_shifted", 0.1)):
            split = store.split(name)
            x, y, cf = split.read("x"), split.read("label"), split.read("is_counterfactual")
            index = split.pairs_index[()]
            a, b = index[:, 0], index[:, 1]
            assert not cf[a].any() and cf[b].all() and len(index) == (~cf).sum()
            assert np.array_equal(y[a], (x[a, 0] > 0).astype(int)) and np.array_equal(y[b], 1 - y[a])
            assert np.array_equal(x[a, 1:], x[b, 1:]) and np.all(np.sign(x[a, 0]) != np.sign(x[b, 0]))
            agreement = np.mean(np.sign(x[a, 1]) == 2 * y[a] - 1)
            assert abs(agreement - agree) < 0.05, (name, agreement)
