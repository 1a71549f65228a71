"""`--launcher inline`: every run in this process, one after another (no worker processes): what a
debugger (`python -m pdb`, breakpoints in a new method) or a profiler needs to see the runs."""

from __future__ import annotations

from pathlib import Path

from cfpairs.outputs import remove_stale_parts
from cftrain.launchers import Launcher, register


@register
class Inline(Launcher):
    """Every run in this process, one after another (for a debugger or a profiler)."""
    name, order = "inline", 30

    def where(self, runs):
        return "this process"

    def run(self, folder, jobs, args_list, on_done, on_progress=None):
        from cftrain.campaign_run import run_job  # noqa: PLC0415  (the trainer, where runs happen)

        for index, (job, args) in enumerate(zip(jobs, args_list)):
            remove_stale_parts(Path(folder) / job.folder)
            on_done(index, run_job(*args))
