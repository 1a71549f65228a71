"""`--launcher slurm`: a campaign's runs as Slurm jobs, submitted through submitit (one job array per
submission), watched with `squeue`, each run written by its job exactly as a local worker writes
it (`cftrain.campaign_run.run_job`: staged, renamed when complete).

What holds locally holds here. A run is finished when its folder exists; running the command again
keeps finished runs, waits for the campaign's jobs still queued or running (it never submits them
twice) and submits the rest. A job that ends without its run (failed, preempted, timed out, its
node lost) is submitted once more; a second failure stops the command (exit 1) showing the last
lines of its log. A job cancelled with `scancel` is not resubmitted. Ctrl-C or SIGTERM of a waiting
command cancels its jobs (`--no-wait` leaves them running). Each job's log is kept beside its run
folder (`<run>.slurm.out`, `<run>.slurm.err`). The job ids live in `slurm.json` in the campaign
folder. Job state comes from `squeue` (jobs stay there for the cluster's MinJobAge after they end),
not from `sacct`: clusters without accounting work too, and submitit's result pickles are never read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cfpairs.errors import JobsFailed, UserError
from cfpairs.outputs import add_to_marker, remove_stale_parts, remove_temporary, write_text_atomic
from cfpairs.progress import note, stop_if_requested
from cftrain.campaign_run import run_job_in_slurm
from cftrain.launchers import Submitted
from cftrain.rundir import METRICS, RunDir, read_json_file

ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
         "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
STATE_FILE, WORK = "slurm.json", ".slurm.part"  # WORK: submitit's pickles and logs while jobs run
TAIL = 12
JOB_ID = re.compile(r"[0-9]+(_[0-9]+)?")  # what sbatch gives; never an option of squeue or scancel


@dataclass
class SlurmSettings:
    partition: str | None = None
    time: int | None = None          # minutes
    gpus: int | None = None          # per job
    cpus: int | None = None          # per job
    mem: str | None = None           # e.g. 8G
    options: dict = field(default_factory=dict)  # any other sbatch option: {name: value or None}
    array_parallelism: int = 256
    wait: bool = True
    poll_seconds: float = 2.0




def parse_time(text: str) -> int:
    """Minutes from sbatch's forms: MINUTES, MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS[:MINUTES[:SECONDS]]."""
    text = str(text).strip()
    try:
        if "-" in text:
            days, rest = text.split("-", 1)
            hours, minutes, seconds = ([int(p) for p in rest.split(":")] + [0, 0])[:3]
            days = int(days)
        else:
            parts = [int(p) for p in text.split(":")]
            days, (hours, minutes, seconds) = 0, {1: (0, *parts, 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"--slurm-time {text}: give minutes (90) or HH:MM:SS (1:30:00) or D-HH (2-00)") from None
    total = days * 24 * 60 + hours * 60 + minutes + (seconds > 0)
    if total < 1 or min(days, hours, minutes, seconds) < 0:
        raise UserError(f"--slurm-time {text}: must be at least one minute")
    return total


def parse_options(values) -> dict:
    """--slurm-option KEY=VALUE (or a bare flag KEY) -> {key: value or True}, keys as sbatch spells them."""
    out = {}
    for value in values:
        key, sep, setting = str(value).partition("=")
        key = key.strip().lstrip("-")
        if not key or " " in key:
            raise UserError(f"--slurm-option {value}: give NAME=VALUE as sbatch spells it, e.g. account=lab")
        out[key.replace("-", "_")] = setting.strip() if sep else True
    return out


def _run(command: list) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise UserError(f"--launcher slurm: {command[0]} not found (Slurm's commands must be on this machine's "
                        "PATH: run the command where you submit jobs)") from None


def check_cluster(settings: SlurmSettings) -> None:
    """Before any work: Slurm's commands, submitit, and the partition."""
    if importlib.util.find_spec("submitit") is None:
        raise UserError("--launcher slurm needs submitit: pip install '.[slurm]'")
    found = _run(["sinfo", "-h", "-o", "%R"])
    if found.returncode != 0:
        raise UserError(f"--launcher slurm: sinfo failed ({' '.join(found.stderr.split())[:200]})")
    partitions = sorted(set(found.stdout.split()))
    if settings.partition and settings.partition not in partitions:
        raise UserError(f"--slurm-partition {settings.partition}: no such partition (this cluster has "
                        f"{', '.join(partitions) or 'none'})")


def job_states(job_ids) -> dict:
    """{job id: Slurm state} of the jobs squeue still knows (arrays one line per task)."""
    ids = sorted({str(j).split("_")[0] for j in job_ids})
    if not ids:
        return {}
    result = _run(["squeue", "-h", "-r", "--states=all", "-j", ",".join(ids), "-o", "%i|%T"])
    lines = result.stdout.splitlines() if result.returncode == 0 else []
    if result.returncode != 0:  # an id slurmctld forgot makes the whole query fail: ask one by one
        for one in ids:
            single = _run(["squeue", "-h", "-r", "--states=all", "-j", one, "-o", "%i|%T"])
            lines += single.stdout.splitlines() if single.returncode == 0 else []
    states = {}
    for line in lines:
        job, _, state = line.partition("|")
        states[job.strip()] = state.strip()
    return states


def unfinished(folder: Path) -> str | None:
    """What `cftrain collect` says of a campaign folder whose Slurm jobs are not all done: how many of
    its runs are queued, running or in no state squeue knows, with their job ids (None: none)."""
    path = Path(folder) / STATE_FILE
    if not (path.is_file() or path.is_symlink()):
        return None
    state = SlurmLauncher._read_state(path)
    waiting = {run: entry["job_id"] for run, entry in state.items() if not (Path(folder) / run / METRICS).is_file()}
    if not waiting:
        return None
    if shutil.which("squeue") is None:
        return (f"{folder}: {len(waiting)} run(s) were submitted to Slurm and are not finished (jobs "
                f"{', '.join(sorted(set(waiting.values()))[:5])}; no squeue here to ask their state); the view "
                "shows the finished runs only")
    states = job_states(list(waiting.values()))
    counts = {}
    for job in waiting.values():
        found = states.get(job, "not known to squeue (ended without a result?)")
        counts[found] = counts.get(found, 0) + 1
    shown = ", ".join(f"{n} {s.lower() if s.isupper() else s}" for s, n in sorted(counts.items()))
    return (f"{folder}: {len(waiting)} run(s) of this campaign are not finished on Slurm ({shown}; jobs "
            f"{', '.join(sorted({j.split('_')[0] for j in waiting.values()})[:5])}); the view shows the finished runs "
            "only")


def refuse_if_jobs_alive(folder: Path) -> None:
    """Before local runs in a campaign folder Slurm also works on: refused while its jobs live."""
    path = Path(folder) / STATE_FILE
    if not (path.is_file() or path.is_symlink()) or shutil.which("squeue") is None:
        return
    ids = [entry["job_id"] for entry in SlurmLauncher(SlurmSettings())._read_state(path).values()]
    alive = sorted({j.split("_")[0] for j, state in job_states(ids).items() if state in ALIVE})
    if alive:
        raise UserError(f"{folder}: Slurm job(s) {', '.join(alive)} of this campaign are still queued or running; "
                        "wait for them (the same command with --launcher slurm), or scancel them")


class SlurmLauncher:
    """Runs a campaign's jobs on Slurm: `run(folder, jobs, args_list, on_done)` as `run_calls` does locally."""

    def __init__(self, settings: SlurmSettings, kind: str = "campaign"):
        self.settings, self.kind = settings, kind

    def run(self, folder: Path, jobs: list, args_list: list, on_done) -> None:
        self.folder = Path(folder)
        self.state = self._read_state(self.folder / STATE_FILE)
        self.args = {job.folder: args for job, args in zip(jobs, args_list)}
        self.index = {job.folder: i for i, job in enumerate(jobs)}
        live = job_states([self.state[r]["job_id"] for r in self.args if r in self.state])
        waiting = {r for r in self.args if r in self.state and live.get(self.state[r]["job_id"]) in ALIVE}
        fresh = [r for r in self.args if r not in waiting]
        for run in fresh:  # their earlier jobs, if any, are over: what they left half-written goes
            self.state.pop(run, None)
            remove_stale_parts(self.folder / run)
        if waiting:
            note(f"{len(waiting)} run(s) of this {self.kind} are already queued or running on Slurm: waiting for "
                 "them, not submitting them again")
        self._submit(fresh)
        if not self.settings.wait:
            ids = sorted({self.state[r]["job_id"].split("_")[0] for r in self.args})
            raise Submitted(f"submitted {len(fresh)} run(s) to Slurm (jobs {', '.join(ids)}; squeue -j "
                            f"{','.join(ids)}); run the same command again to collect them and write the view")
        try:
            self._watch(on_done)
        except KeyboardInterrupt:  # Ctrl-C and SIGTERM (cfpairs.progress)
            self.cancel()
            raise

    # ------------------------------------------------------------ submission

    def _submit(self, runs: list) -> None:
        if not runs:
            return
        import submitit  # noqa: PLC0415  (an extra: only where Slurm is used)

        executor = submitit.SlurmExecutor(folder=str(self.folder / WORK / "%j"))
        executor.update_parameters(**self._parameters(len(runs)))
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's refusal: said once, below
                submitted = executor.map_array(run_job_in_slurm, *zip(*[self.args[r] for r in runs]))
        except Exception as exc:  # sbatch's refusal comes as submitit's FailedJobError or an OSError
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = next((line for line in lines if line.startswith("sbatch:")), lines[0] if lines else repr(exc))
            raise UserError(f"--launcher slurm: Slurm refused the submission ({' '.join(reason.split())[:240]})") \
                from None
        for run, job in zip(runs, submitted):
            attempts = self.state.get(run, {}).get("attempts", 0)
            self.state[run] = {"job_id": job.job_id, "attempts": attempts + 1}
        self._write_state()

    def _parameters(self, n: int) -> dict:
        s = self.settings
        given = {"partition": s.partition, "time": s.time, "gpus_per_node": s.gpus, "cpus_per_task": s.cpus,
                 "mem": s.mem}
        params = {k: v for k, v in given.items() if v is not None}
        return {**params, "job_name": f"cftrain-{self.kind}", "array_parallelism": min(s.array_parallelism, n),
                "additional_parameters": dict(s.options)}

    # ------------------------------------------------------------ watching

    def _watch(self, on_done) -> None:
        pending, failed = set(self.args), {}
        while pending:
            stop_if_requested()
            states = job_states([self.state[r]["job_id"] for r in pending])
            retry = []
            for run in sorted(pending):
                job_id = self.state[run]["job_id"]
                if (self.folder / run / METRICS).is_file():
                    pending.discard(run)
                    self._keep_logs(run, job_id)
                    on_done(self.index[run], RunDir(self.folder / run).read_metrics())
                elif states.get(job_id) not in ALIVE:
                    pending.discard(run)
                    state = states.get(job_id, "ended")
                    self._keep_logs(run, job_id)
                    if state != "CANCELLED" and self.state[run]["attempts"] < 2:
                        note(f"{run}: job {job_id} {state.lower()} without its run; submitting it once more")
                        retry.append(run)
                    else:
                        failed[run] = state
            self._submit(retry)
            pending.update(retry)
            if pending:
                time.sleep(self.settings.poll_seconds)
        if failed:
            self._report(failed)
        remove_temporary(self.folder / WORK)

    def _report(self, failed: dict) -> None:
        run, state = next(iter(sorted(failed.items())))
        log = self.folder / f"{run}.slurm.err"
        tail = [line for line in (log.read_text(errors="replace").splitlines() if log.is_file() else [])
                if line.strip()][-TAIL:]
        for line in tail:
            note(f"  {run} | {line}")
        more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
        cancelled = all(s == "CANCELLED" for s in failed.values())
        raise JobsFailed(f"{len(failed)} Slurm job(s) ended without their run: {run} ({state.lower()}){more}; "
                         f"log {log}" + ("; run the same command again to submit them" if cancelled else
                                         "; fix the cause and run the same command again"))

    def _keep_logs(self, run: str, job_id: str) -> None:
        """The job's stdout and stderr beside its run folder (the last attempt's)."""
        from submitit.core.utils import JobPaths  # noqa: PLC0415
        paths = JobPaths(self.folder / WORK / "%j", job_id=job_id, task_id=0)
        kept = []
        for source, suffix in ((paths.stdout, "out"), (paths.stderr, "err")):
            if Path(source).is_file():
                target = self.folder / f"{run}.slurm.{suffix}"
                shutil.copyfile(source, target)
                kept.append(str(target.relative_to(self.folder)))
        if kept:
            add_to_marker(self.folder, *kept)

    def cancel(self) -> None:
        """scancel this command's jobs (only its runs': an entry for another run is not believed)."""
        ids = sorted({self.state[run]["job_id"].split("_")[0] for run in self.args if run in self.state})
        if ids:
            _run(["scancel", *ids])
            note(f"cancelled Slurm job(s) {', '.join(ids)}")

    # ------------------------------------------------------------ slurm.json

    @staticmethod
    def _read_state(path: Path) -> dict:
        """slurm.json, read like every run file (a regular file, strict JSON), then its entries checked."""
        if not path.is_file() and not path.is_symlink():
            return {}
        found = read_json_file(path)
        try:
            runs = found["runs"]
            if not all(isinstance(v.get("job_id"), str) and JOB_ID.fullmatch(v["job_id"]) and
                       isinstance(v.get("attempts"), int) for v in runs.values()):
                raise ValueError("entries need a Slurm job id (digits, or JOB_TASK) and attempts")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"{path}: not the job list cftrain writes ({exc}); remove it to submit every unfinished "
                            "run again") from None
        return runs

    def _write_state(self) -> None:
        write_text_atomic(self.folder / STATE_FILE, json.dumps({"runs": self.state}, indent=1, sort_keys=True) + "\n")
        add_to_marker(self.folder, STATE_FILE)
