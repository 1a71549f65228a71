"""Progress where users look: a tqdm bar on a terminal; elsewhere (log files, nohup, CI) plain
lines on stderr, one per training epoch, and one per 10% of a build step once the step has run
for QUIET_SECONDS (short steps stay silent), so a log is never silent for minutes. The command
line's `--quiet` turns both off. tqdm is the programs' (the reader alone prints plain lines).

Every progress step is also where a stop signal is honoured a second time (`stop_if_requested`)."""

from __future__ import annotations

import signal
import sys
import time

_settings = {"quiet": False, "stop": None, "relay": None}
QUIET_SECONDS = 2.0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that temporary outputs are removed on the way out."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C. A subclass, not KeyboardInterrupt itself: CPython remembers a bare KeyboardInterrupt
    that leaves any `exec` of a string (dataclasses and lazy imports run them) and then ends the
    process by SIGINT whatever exit code the program chose."""


def request_stop(signum, frame) -> None:
    """The SIGTERM and SIGINT handler: raise where the program is, and remember the request. The
    exception can be lost where it lands: a library's bare `except:` (mpmath's around `import
    gmpy2`, run when torch lazily imports sympy as the optimizer is made) or a finalizer, whose
    exceptions Python prints and drops. So the work's loops check again."""
    _settings["stop"] = signum
    stop_if_requested()


def stop_if_requested() -> None:
    signum = _settings["stop"]
    if signum is not None:
        raise Terminated() if signum == signal.SIGTERM else Interrupted()


def note(message: str) -> None:
    """One line for the user on stderr, quiet or not: something a command set aside or decided."""
    print(f"note: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def clear_stop() -> None:
    _settings["stop"] = None


def set_quiet(quiet: bool) -> None:
    _settings["quiet"] = bool(quiet)


def set_relay(relay) -> None:
    """`relay(line)` gets every per-epoch progress line, quiet or not (a worker process of a campaign
    sends them to its parent, which shows them); None: off."""
    _settings["relay"] = relay


def _tqdm():
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:
        return None
    return tqdm


class Progress:
    """`update(n)`, `set_postfix(**values)`, `close()`; use as a context manager too.

    `every_update`: print a plain line at every update (epochs) instead of every 10%."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", every_update: bool = False,
                 unit_scale: bool = False):
        self.total, self.desc, self.unit, self.every_update = total, desc, unit, every_update
        self.done, self.postfix, self.next_tenth = 0, {}, 1
        self.bar = None
        self.plain = False
        self.start = time.monotonic()
        if not _settings["quiet"]:
            tqdm = _tqdm() if sys.stderr.isatty() else None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=False)
            else:
                self.plain = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, **values) -> None:
        self.postfix = values
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def update(self, n: int = 1) -> None:
        stop_if_requested()
        self.done += n
        if self.every_update and _settings["relay"] is not None:
            _settings["relay"](self._line())
        if self.bar is not None:
            self.bar.update(n)
        elif self.plain and (self.every_update or (self._crossed_a_tenth() and
                                                   time.monotonic() - self.start >= QUIET_SECONDS)):
            print(self._line(), file=sys.stderr, flush=True)

    def _line(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.postfix.items())
        of = f"/{self.total}" if self.total else ""
        return f"{self.desc}: {self.done}{of} {self.unit}{extra}"

    def say(self, line: str) -> None:
        """A line above the bar (a terminal) or a plain line (a log); nothing when quiet."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        elif self.plain:
            print(line, file=sys.stderr, flush=True)

    def _crossed_a_tenth(self) -> bool:
        if not self.total:
            return False
        crossed = False
        while self.next_tenth <= 10 and self.done * 10 >= self.next_tenth * self.total:
            self.next_tenth += 1
            crossed = True
        return crossed

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
