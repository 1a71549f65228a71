"""Progress steps honour a stop signal that Python swallowed where it landed (in a finalizer)."""

from __future__ import annotations

import signal
import sys

import pytest

import cftrain.train
from cfpairs.progress import Interrupted, Progress, Terminated, clear_stop, request_stop
from tests.helpers import run_cli


class _SignalInAFinalizer:
    """An object whose finalizer receives the signal: Python prints the handler's exception as
    unraisable and carries on, as it does when SIGTERM lands while any `__del__` runs."""

    def __init__(self, signum):
        self.signum = signum

    def __del__(self):
        request_stop(self.signum, None)


def _swallow(signum, monkeypatch) -> list:
    swallowed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: swallowed.append(info.exc_type))
    _SignalInAFinalizer(signum)  # collected at once (no reference kept)
    return swallowed


@pytest.mark.parametrize("signum, raised", [(signal.SIGTERM, Terminated), (signal.SIGINT, Interrupted)])
def test_a_swallowed_signal_stops_at_the_next_progress_step(signum, raised, monkeypatch):
    try:
        assert _swallow(signum, monkeypatch) == [raised]  # the first raise was lost ...
        bar = Progress(10, "work")
        with pytest.raises(raised):  # ... the next step raises again
            bar.update()
        assert bar.done == 0
    finally:
        clear_stop()
    Progress(10, "work").update()  # cleared: work goes on


def test_training_stops_on_a_swallowed_sigterm_and_leaves_nothing(work, tmp_path, monkeypatch):
    batches = []
    real_to_device = cftrain.train.to_device

    def to_device(batch, device):
        batches.append(1)
        if len(batches) == 3:
            _swallow(signal.SIGTERM, monkeypatch)
        return real_to_device(batch, device)

    monkeypatch.setattr(cftrain.train, "to_device", to_device)
    out = tmp_path / "r"
    result = run_cli("cftrain", "run", work / "toy.h5", "--out", out, "--epochs", "1000", "--patience", "1000")
    assert result.returncode == 143 and result.stderr.strip().splitlines()[-1] == "cftrain: terminated", result.stderr
    assert len(batches) == 3  # stopped before the fourth batch, not at the end of 1000 epochs
    assert not out.exists() and list(tmp_path.iterdir()) == []
    Progress(10, "work").update()  # the command line cleared the request on its way out


def test_a_build_stops_on_a_swallowed_sigterm_and_leaves_nothing(tmp_path, monkeypatch):
    import cfpairs.writer  # noqa: PLC0415
    real_validate = cfpairs.writer.validate_split

    def validate_split(*args, **kwargs):
        _swallow(signal.SIGTERM, monkeypatch)  # just before the split's datasets are written
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(cfpairs.writer, "validate_split", validate_split)
    result = run_cli("cfbuild", "toy", "--out", tmp_path / "toy.h5", "--n", "50")
    assert result.returncode == 143 and result.stderr.strip().splitlines()[-1] == "cfbuild: terminated", result.stderr
    assert list(tmp_path.iterdir()) == []
