"""`--launcher local` (the default): the runs in --jobs worker processes of this machine
(`cftrain.pool`), each run's epochs on the progress line."""

from __future__ import annotations

from pathlib import Path

from cfpairs.outputs import remove_stale_parts
from cftrain.launchers import Launcher, register
from cftrain.pool import available_cores, run_calls


@register
class Local(Launcher):
    """Worker processes of this machine, --jobs at once (default: the cores this process may use)."""
    name, default, reads_jobs, order = "local", True, True, 0

    def processes(self, runs: int) -> int:
        return max(1, min(self.jobs or available_cores(), runs or 1))

    def where(self, runs):
        n = self.processes(runs)
        return f"{n} process{'es' if n > 1 else ''}"

    def run(self, folder, jobs, args_list, on_done, on_progress=None):
        from cftrain.campaign_run import run_job  # noqa: PLC0415  (the trainer: imported where runs happen)
        from cftrain.slurm import refuse_if_jobs_alive  # noqa: PLC0415

        folder = Path(folder)
        refuse_if_jobs_alive(folder)
        for job in jobs:
            remove_stale_parts(folder / job.folder)
        try:
            run_calls(run_job, args_list, self.processes(len(jobs)), on_done=on_done, on_progress=on_progress)
        except BaseException:
            for job in jobs:  # what killed workers left half-written
                remove_stale_parts(folder / job.folder)
            raise
