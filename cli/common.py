"""What both command-line programs share: one-line errors, exit codes, --debug."""

from __future__ import annotations

import sys

import click

from cfbuild.errors import UserError


class Group(click.Group):
    """A click group whose errors are one line: exit 2 for usage and input errors.

    Tracebacks are shown only with the group's `--debug` flag.
    """

    def main(self, args=None, prog_name=None, **kwargs):
        args = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in args
        prog = prog_name or self.name
        try:
            rc = super().main(args=args, prog_name=prog, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo(f"{prog}: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            if debug:
                raise
            where = f" {exc.ctx.info_name}" if getattr(exc, "ctx", None) and exc.ctx.info_name != prog else ""
            click.echo(f"{prog}{where}: error: {exc.format_message()}", err=True)
            sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
        except (UserError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            if debug:
                raise
            click.echo(f"{prog}: error: {_one_line(exc)}", err=True)
            sys.exit(2)
        sys.exit(rc if isinstance(rc, int) else 0)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())


def debug_option(func):
    """--debug on a group: accepted (and read by Group.main) to show tracebacks."""
    return click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")(func)
