"""Where a campaign's runs go (`--launcher`), one class per launcher behind a registry, as DomainBed
keeps its launchers: `local` (worker processes of this machine), `slurm` (one Slurm job per run),
`command` (each run as its own `cftrain run` command line, optionally behind a prefix). A launcher
is built once per command (`make_launcher`) and runs the campaign's planned runs
(`run(folder, jobs, args_list, on_done, on_progress)`), each written as `cftrain.campaign_run.run_job`
writes it; `cftrain.jobs.run_campaign` knows no launcher by name. A launcher declares the options
only it reads (`LaunchOption`: a flag on every campaign command, refused with another launcher).
Every module of this package is imported with it: a new launcher is one new file (docs/EXTENDING.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from cfpairs.errors import UserError
from cfpairs.registering import discover, ordered_register

LAUNCHERS: dict[str, type] = {}
register = ordered_register(LAUNCHERS)


@dataclass(frozen=True)
class LaunchOption:
    """A flag only one launcher reads: `kind` str, int, "flag" (on/off) or "many" (repeatable text)."""
    name: str
    help: str
    kind: object = str
    default: object = None
    low: int | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class Submitted(Exception):
    """A launcher that returns once its runs are submitted (Slurm's --no-wait): the message says how
    to collect them; the command exits 0 with it."""


class Launcher:
    """Runs a campaign's planned runs somewhere. `settings`: the values of its own options."""
    name = ""
    default = False          # the launcher a command uses when none is given (one says so)
    options: tuple = ()      # LaunchOption: the flags only it reads
    reads_jobs = False       # True: it runs --jobs runs at once on this machine
    needs: str | None = None  # what it needs beyond this machine (tests/test_launchers.py skips it, saying so)
    order = 50.0

    def __init__(self, kind: str, jobs: int | None, settings: dict):
        self.kind, self.jobs, self.settings = kind, jobs, settings

    @classmethod
    def check(cls, settings: dict) -> None:
        """Refuse, before any work, what this launcher cannot do here (a UserError naming why)."""

    def where(self, runs: int) -> str:
        """Where `runs` runs go, for the progress line ("2 processes", "Slurm")."""
        return self.name

    def run(self, folder, jobs: list, args_list: list, on_done, on_progress=None) -> None:
        """Run every job (`args_list[i]`: `run_job`'s arguments for `jobs[i]`), calling
        `on_done(i, metrics)` as each finishes and `on_progress(i, line)` for its epochs where it
        can; return when all are done (or raise `Submitted`)."""
        raise NotImplementedError


def default_launcher() -> str:
    return next(name for name, cls in LAUNCHERS.items() if cls.default)


def launch_options() -> list:
    """Every launcher's options, each once (a flag of every campaign command)."""
    found = {}
    for cls in LAUNCHERS.values():
        for option in cls.options:
            found.setdefault(option.name, option)
    return list(found.values())


def make_launcher(name: str | None, kind: str, jobs: int | None = None, given: dict | None = None) -> Launcher:
    """The launcher `name` (default: the registry's default) for a campaign of `kind`, built from the
    options `given` ({name: value}; None or a flag off: not given); another launcher's option, or
    --jobs for a launcher that runs nothing on this machine, is refused by flag."""
    name = name or default_launcher()
    if name not in LAUNCHERS:
        raise UserError(f"--launcher {name}: unknown (choose from {', '.join(LAUNCHERS)})")
    cls, given = LAUNCHERS[name], {k: v for k, v in (given or {}).items() if v not in (None, False, (), [])}
    own = {o.name for o in cls.options}
    for option in launch_options():
        if option.name in given and option.name not in own:
            owner = next(n for n, c in LAUNCHERS.items() if option in c.options)
            raise UserError(f"{option.flag} is for --launcher {owner}")
    if jobs is not None and not cls.reads_jobs:
        raise UserError(f"--jobs is for --launcher {', '.join(n for n, c in LAUNCHERS.items() if c.reads_jobs)} "
                        f"(--launcher {name} runs every job it can)")
    settings = {o.name: given.get(o.name, o.default) for o in cls.options}
    cls.check(settings)
    return cls(kind, jobs, settings)


discover(__name__, __path__)

__all__ = ["LAUNCHERS", "LaunchOption", "Launcher", "Submitted", "default_launcher", "launch_options",
           "make_launcher", "register"]
