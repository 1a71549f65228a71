"""Every check on an output that can be made before any work: its name, what is there, the inputs
of the command (never an output), the protected folders, and what `--force` may replace."""

from __future__ import annotations

import contextvars
import os
import stat
from contextlib import contextmanager
from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.outputs.basics import FOLDER_KINDS, NAME_MAX, PART_EXTRA, is_kind
from cfpairs.outputs.ownership import not_ours, owner

_inputs: contextvars.ContextVar[tuple] = contextvars.ContextVar("cfpairs_inputs", default=())


# ---------------------------------------------------------------- inputs


@contextmanager
def command_inputs(paths):
    """Declare the inputs of the running command: no output may be, contain or lie inside one."""
    token = _inputs.set(tuple(Path(p) for p in paths if p is not None))
    try:
        yield
    finally:
        _inputs.reset(token)


def _resolved(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return Path(os.path.abspath(path))


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _resolved(a) == _resolved(b)


def _inside(inner: Path, outer: Path) -> bool:
    inner, outer = _resolved(inner), _resolved(outer)
    return inner != outer and outer in inner.parents


def _check_inputs(path: Path, option: str, inputs) -> None:
    for given in [*_inputs.get(), *(Path(p) for p in inputs if p is not None)]:
        if not given.exists():
            continue
        if _same(path, given) or _resolved(path) == _resolved(given):
            raise UserError(f"{option} {path}: is an input of this command ({given}); choose another {option}")
        if _inside(given, path):
            raise UserError(f"{option} {path}: contains an input of this command ({given}); choose another "
                            f"{option}")
        if given.is_dir() and _inside(path, given):
            raise UserError(f"{option} {path}: lies inside the input folder {given}; choose another {option}")


# ---------------------------------------------------------------- the checks


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}...{text[-40:]} ({len(text)} characters)"


def _check_name(path: Path, option: str) -> None:
    name = os.fsencode(path.name)
    limit = NAME_MAX - PART_EXTRA - len(".old")
    if len(name) > limit:
        raise UserError(f"file name too long ({len(name)} bytes; at most {limit}, as the temporary name beside "
                        f"it adds {PART_EXTRA}): {option} {_short(path)}")
    if len(os.fsencode(os.path.abspath(path))) > 4000:
        raise UserError(f"path too long ({len(str(path))} characters): {option} {_short(path)}")


def _check_not_special(path: Path, option: str) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserError(f"{option} {_short(path)}: cannot be examined ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise UserError(f"{option} {path}: is a symbolic link (to {os.readlink(path)}); give the real path")
    what = special_kind(info.st_mode)
    if what:
        raise UserError(f"{option} {path}: is a {what}, not a regular file or folder; never replaced")


def special_kind(mode: int) -> str | None:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return None


def _check_protected(path: Path, option: str) -> None:
    resolved = _resolved(path)
    cwd = _resolved(Path.cwd())
    home = _resolved(Path.home())
    if resolved == cwd or resolved in cwd.parents:
        raise UserError(f"{option} {path}: is the working folder{'' if resolved == cwd else ' or one of its parents'};"
                        f" give a new folder, e.g. {option} runs/NAME")
    if resolved in (home, Path(resolved.anchor)):
        raise UserError(f"{option} {path}: is {'the home folder' if resolved == home else 'the root folder'}; "
                        f"give a new folder, e.g. {option} runs/NAME")


def _writable(folder: Path, path: Path, option: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: folder {folder} is not writable")


def check_output(path, kind: str, force: bool = False, inputs=(), option: str = "--out",
                 resumable: bool = False) -> Path:
    """Every check that can be made before any work; raises UserError naming `option` and the problem.
    `resumable`: an existing folder of this kind is continued rather than replaced."""
    assert is_kind(kind), f"{kind}: not a registered kind of output"
    path = Path(path)
    _check_name(path, option)
    _check_not_special(path, option)
    _check_protected(path, option)
    _check_inputs(path, option, inputs)
    folder = kind in FOLDER_KINDS
    if not folder:
        if not path.parent.is_dir():
            raise UserError(f"{option} {path}: output folder {path.parent} does not exist")
        _writable(path.parent, path, option)
    else:
        existing = next(p for p in [path, *path.parents] if p.exists() or p == Path(p.anchor))
        if existing != path and not existing.is_dir():
            raise UserError(f"{option} {path}: {existing} is a file, not a folder")
        _writable(existing if existing != path else path.parent, path, option)
    if not path.exists():
        return path
    if folder and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a folder")
    if not folder and path.is_dir():
        raise UserError(f"{option} {path}: is a folder, not a file")
    if folder and not any(path.iterdir()):
        return path  # an empty folder is free
    if resumable and owner(path) == kind:
        return path  # continued in place (the caller checks that it is the same work)
    if not force:
        raise UserError(f"{option} {path}: already exists{' and is not empty' if folder else ''} "
                        "(use --force to replace it)")
    problem = not_ours(path, kind)
    if problem:
        raise UserError(f"{option} {path}: {problem}; --force replaces only what cfpairs wrote")
    return path
