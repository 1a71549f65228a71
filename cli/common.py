"""What both command-line programs share: one-line errors, exit codes, --debug, --quiet,
--version, SIGTERM handled like Ctrl-C, and option types that refuse NaN and infinity."""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path

import click

from cfpairs import __version__
from cfpairs.errors import JobsFailed, OutputWriteError, UserError
from cfpairs.outputs import command_inputs, special_kind
from cfpairs.progress import Terminated, clear_stop, request_stop, set_quiet

GLOBAL_FLAGS = ("--debug", "--quiet")  # accepted before or after the subcommand


class InputPath(click.Path):
    """An existing input: a regular file (or a folder, where allowed), never a FIFO, a device or a
    socket (reading one would block or never end). Its values are the command's inputs, which no
    output may be, contain or lie inside (`cfpairs.outputs`)."""

    def __init__(self, file_okay: bool = True, dir_okay: bool = False):
        super().__init__(exists=True, file_okay=file_okay, dir_okay=dir_okay, path_type=Path)

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        what = special_kind(os.stat(path).st_mode)
        if what:
            self.fail(f"{value}: is a {what}, not a regular file", param, ctx)
        return path


class TransferStore(InputPath):
    """NAME=STORE: a transfer set's column name and its store (an input like any other)."""
    name = "NAME=STORE"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, sep, path = str(value).partition("=")
        if not sep or not name or not path:
            self.fail(f"{value}: expected NAME=STORE, e.g. yelp=yelp.h5", param, ctx)
        return name, super().convert(path, param, ctx)


def _input_values(ctx: click.Context) -> list:
    values = []
    for param in ctx.command.params:
        if isinstance(param.type, InputPath) and ctx.params.get(param.name) is not None:
            value = ctx.params[param.name]
            items = list(value) if param.multiple or param.nargs != 1 else [value]
            values += [v[1] if isinstance(v, tuple) else v for v in items]  # NAME=STORE: the store
    return values


class Command(click.Command):
    """A command whose InputPath parameters are declared as the run's inputs."""

    def invoke(self, ctx):
        with command_inputs(_input_values(ctx)):
            return super().invoke(ctx)


class Group(click.Group):
    """A click group whose errors are one line: exit 2 for usage and input errors, 130 for
    Ctrl-C, 143 for SIGTERM, 1 for an output that could not be written (a full disk) and for an
    internal error. Tracebacks only with `--debug`."""
    command_class = Command

    def main(self, args=None, prog_name=None, **kwargs):
        args = list(sys.argv[1:] if args is None else args)
        debug, quiet = "--debug" in args, "--quiet" in args
        args = [a for a in args if a not in GLOBAL_FLAGS]
        set_quiet(quiet)
        prog = prog_name or self.name
        clear_stop()
        previous = signal.signal(signal.SIGTERM, request_stop)
        ctrl_c = signal.getsignal(signal.SIGINT)
        if ctrl_c is signal.default_int_handler:  # not where SIGINT is ignored (nohup, `&`)
            signal.signal(signal.SIGINT, request_stop)
        try:
            rc = super().main(args=args, prog_name=prog, standalone_mode=False, **kwargs)
        except (click.exceptions.Abort, KeyboardInterrupt) as exc:
            cause = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__ or exc.__context__
            terminated = isinstance(cause, Terminated)
            click.echo(f"{prog}: {'terminated' if terminated else 'interrupted'}", err=True)
            sys.exit(143 if terminated else 130)
        except click.ClickException as exc:
            if debug:
                raise
            where = f" {exc.ctx.info_name}" if getattr(exc, "ctx", None) and exc.ctx.info_name != prog else ""
            click.echo(f"{prog}{where}: error: {one_line(exc.format_message())}", err=True)
            sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
        except (UserError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            if debug:
                raise
            click.echo(f"{prog}: error: {one_line(exc)}", err=True)
            sys.exit(2)
        except (OutputWriteError, JobsFailed) as exc:
            if debug:
                raise
            click.echo(f"{prog}: error: {one_line(exc)}", err=True)
            sys.exit(1)
        except Exception as exc:  # a bug: still one line, with the way to the traceback
            if debug:
                if getattr(exc, "details", ""):  # a worker process's own traceback
                    click.echo(exc.details, err=True)
                raise
            click.echo(f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)[:300]} "
                       f"(rerun with --debug for the traceback)", err=True)
            sys.exit(1)
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, ctrl_c)
            clear_stop()
        sys.exit(rc if isinstance(rc, int) else 0)


ALLOW_EXTERNAL = click.option(
    "--allow-external", is_flag=True,
    help="Read region features that the store keeps in other feature files (an external link or a virtual "
         "dataset, as cfbuild vqa links them; inspect shows where); refused otherwise.")


def one_line(exc) -> str:
    """The message on one line; an OS error gives its reason first, so a long name cannot hide it."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return " ".join(str(exc).split())


def group_options(func):
    """--debug, --quiet and --version on a group (Group.main reads the first two anywhere)."""
    func = click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")(func)
    func = click.option("--quiet", is_flag=True, help="No progress bars or progress lines.")(func)
    return click.version_option(__version__, "--version", package_name="cfpairs")(func)


class FiniteFloat(click.ParamType):
    """A float that is finite (no nan, inf) and inside [low, high] (open ends where asked)."""
    name = "float"

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False,
                 high_open: bool = False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value):
            number = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            self.fail(f"{number} must be {'>' if self.low_open else '>='} {self.low}", param, ctx)
        if self.high is not None and (number > self.high or (self.high_open and number == self.high)):
            self.fail(f"{number} must be {'<' if self.high_open else '<='} {self.high}", param, ctx)
        return number

    def get_metavar(self, param, ctx=None):
        low = "" if self.low is None else f"{self.low}{'<' if self.low_open else '<='}"
        high = "" if self.high is None else f"{'<' if self.high_open else '<='}{self.high}"
        return f"FLOAT {low}x{high}" if low or high else "FLOAT"
