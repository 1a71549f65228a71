"""One planned run of a campaign, as a worker runs it: the function the local process pool
(`cftrain.jobs.LocalLauncher`) and a Slurm job (`cftrain.slurm.SlurmLauncher`) both call. Kept apart
from both launchers so that neither imports the other's module to reach it."""

from __future__ import annotations

import signal
import sys

from cfpairs.outputs import staged
from cfpairs.progress import request_stop, set_quiet
from cftrain.presets import RunConfig


def run_job(final: str, store_path: str, config: RunConfig, labels: dict, verified: str | None) -> dict:
    """Trains one run into `final`, staged and renamed when complete (a killed run leaves no folder)."""
    from cftrain.train import run_into  # noqa: PLC0415  (a worker imports the trainer itself)

    with staged(final, "run") as tmp:
        return run_into(tmp, store_path, config, check=False, job=labels, verified=verified)


def run_job_in_slurm(*args) -> None:
    """A Slurm job's function: SIGTERM (scancel, preemption) stops the run where it is and removes
    its half-written folder, as locally; the result is the run folder (submitit's result pickle
    holds None)."""
    signal.signal(signal.SIGTERM, request_stop)
    set_quiet(True)
    try:
        run_job(*args)
    except KeyboardInterrupt:
        sys.exit(143)
