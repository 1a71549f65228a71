"""Worker processes for a campaign's runs (`cftrain.launchers.local`): spawned processes that die
with their parent (a `kill -9` of the command leaves no worker behind), fed over pipes, each run's
epochs relayed to the parent's progress line; the first failure stops every worker."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from multiprocessing.connection import wait

from cfpairs.errors import OutputWriteError, UserError
from cfpairs.progress import set_quiet, set_relay, stop_if_requested


def available_cores() -> int:
    """The cores this process may use (its affinity), the default number of workers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ---------------------------------------------------------------- worker processes


class WorkerFailed(Exception):
    """A job failed in a worker with an unexpected exception (its traceback travels as text)."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when its parent dies; elsewhere a thread watches."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while True:
            threading.Event().wait(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _portable(exc: BaseException):
    if isinstance(exc, (UserError, OutputWriteError)):
        return exc
    return WorkerFailed(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", traceback.format_exc())


def _worker_loop(conn, parent: int) -> None:
    _die_with_parent(parent)
    set_quiet(True)  # the parent reports each finished job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        index, function, args = item
        set_relay(lambda line, index=index: conn.send((index, "progress", line)))  # epochs reach the parent
        try:
            conn.send((index, True, function(*args)))
        except BaseException as exc:  # noqa: BLE001  (reported to the parent, which stops everything)
            conn.send((index, False, _portable(exc)))


class WorkerPool:
    """`processes` spawned workers fed over pipes; results come back as they finish."""

    def __init__(self, processes: int, on_progress=None):
        self.on_progress = on_progress  # (job index, line): each epoch of a running job
        context = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
        self.workers = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=_worker_loop, args=(theirs, os.getpid()), daemon=False)
            process.start()
            theirs.close()
            self.workers.append((process, ours))

    def run(self, function, args_list: list):
        """Yield (index, result) as each call finishes; the first failure stops every worker."""
        pending = list(enumerate(args_list))[::-1]
        busy = {}
        for process, conn in self.workers:
            if pending:
                index, args = pending.pop()
                conn.send((index, function, args))
                busy[conn] = index
        while busy:
            stop_if_requested()
            for conn in wait(list(busy), timeout=1.0):
                try:
                    index, ok, value = conn.recv()
                except EOFError:
                    raise WorkerFailed(f"a worker process died while running job {busy[conn]}") from None
                if ok == "progress":  # a line of a run still going
                    if self.on_progress is not None:
                        self.on_progress(index, value)
                    continue
                del busy[conn]
                if not ok:
                    raise value
                if pending:
                    next_index, args = pending.pop()
                    conn.send((next_index, function, args))
                    busy[conn] = next_index
                yield index, value

    def close(self) -> None:
        for process, conn in self.workers:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for process, conn in self.workers:
            process.join(timeout=5)

    def terminate(self) -> None:
        for process, conn in self.workers:
            if process.is_alive():
                process.kill()
        for process, conn in self.workers:
            process.join()
            conn.close()


def run_calls(function, args_list: list, processes: int, on_done=None, on_progress=None) -> list:
    """`function(*args)` for each args, in this process (processes == 1) or in a WorkerPool;
    `on_done(index, result)` as each finishes, `on_progress(index, line)` at each epoch of a job
    running in a worker (in this process, its own progress lines show); results in the order of
    `args_list`."""
    results = [None] * len(args_list)
    if processes <= 1 or len(args_list) <= 1:
        for index, args in enumerate(args_list):
            results[index] = function(*args)
            if on_done:
                on_done(index, results[index])
        return results
    pool = WorkerPool(min(processes, len(args_list)), on_progress)
    try:
        for index, result in pool.run(function, args_list):
            results[index] = result
            if on_done:
                on_done(index, result)
        pool.close()
    finally:
        pool.terminate()
    return results
