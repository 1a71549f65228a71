"""`--launcher command`: each run as its own `cftrain run` command line (`cftrain.commands`: every
option written out, the campaign's labels with `--job`), --jobs at once, each behind
`--command-prefix` when given (e.g. `srun -n1`, `docker run --rm image`, `ssh gpu3`): the launcher
to reach for when runs must start as processes of their own. Each command is kept in the run
folder's parent as `<run>.command` before it starts, so a failed run can be started again by hand."""

from __future__ import annotations

import shlex
import subprocess
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.outputs import add_to_marker, remove_stale_parts, write_text_atomic
from cfpairs.progress import stop_if_requested
from cftrain.launchers import LaunchOption, Launcher, register
from cftrain.pool import available_cores

OPTIONS = (LaunchOption("command_prefix", "command: words put before each run's command line, e.g. 'srun -n1' "
                        "(split as a shell would; no shell runs them)."),)


@register
class Command(Launcher):
    """Each run as its own `cftrain run` command line, --jobs at once, behind --command-prefix."""
    name, options, reads_jobs, order = "command", OPTIONS, True, 20

    @classmethod
    def check(cls, settings):
        try:
            shlex.split(settings.get("command_prefix") or "")
        except ValueError as exc:
            raise UserError(f"--command-prefix: {exc}") from None

    def where(self, runs):
        n = max(1, min(self.jobs or available_cores(), runs or 1))
        return f"{n} command{'s' if n > 1 else ''} at once"

    def command(self, final: str, store: str, config, labels: dict) -> list:
        from cftrain.commands import run_command  # noqa: PLC0415  (the options' registry: where runs start)
        prefix = shlex.split(self.settings.get("command_prefix") or "")
        return prefix + run_command(store, final, config, labels)

    def run(self, folder, jobs, args_list, on_done, on_progress=None):
        from cftrain.commands import shown  # noqa: PLC0415
        from cftrain.rundir import RunDir  # noqa: PLC0415
        from cftrain.slurm import refuse_if_jobs_alive  # noqa: PLC0415

        folder = Path(folder)
        refuse_if_jobs_alive(folder)  # a campaign folder Slurm still works on is not run here too
        commands = [self.command(final, store, config, labels) for final, store, config, labels, _ in args_list]
        for job, command in zip(jobs, commands):
            remove_stale_parts(folder / job.folder)
            write_text_atomic(folder / f"{job.folder}.command", shown(command) + "\n")
        add_to_marker(folder, *(f"{job.folder}.command" for job in jobs))  # ours: --force may replace them
        started = Started()
        try:
            with ThreadPoolExecutor(max(1, min(self.jobs or available_cores(), len(jobs) or 1))) as threads:
                futures = {threads.submit(started.run, command): i for i, command in enumerate(commands)}
                pending = set(futures)
                while pending:
                    stop_if_requested()
                    finished, pending = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
                    for future in finished:
                        index = futures[future]
                        code, err = future.result()
                        if code != 0:
                            raise UserError(f"{jobs[index].folder}: its command failed (exit {code}): {err} "
                                            f"(the command: {folder / jobs[index].folder}.command)")
                        on_done(index, RunDir(args_list[index][0]).read_metrics())
        except BaseException:
            started.stop()  # a failure, Ctrl-C or SIGTERM: the other commands end too (each removes its part)
            raise


class Started:
    """The commands running, each a process of its own; `stop()` ends them and starts no more."""

    def __init__(self):
        self.processes, self.stopping = [], False

    def run(self, command: list) -> tuple:
        """(exit code, the last line it wrote to stderr)."""
        if self.stopping:
            return 0, ""
        try:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                       stdin=subprocess.DEVNULL)
        except OSError as exc:
            return 127, f"{command[0]}: {exc.strerror}"
        self.processes.append(process)
        _, err = process.communicate()
        lines = [line for line in err.splitlines() if line.strip()]
        return process.returncode, (lines[-1] if lines else "no message")[:300]

    def stop(self) -> None:
        self.stopping = True
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            process.wait()


__all__ = ["Command"]
