"""Outputs that appear whole or not at all: checks made before any work starts, temporary
names beside the final one (`.NAME.<pid>.XXXX.part`), and the clean-up of parts that a killed
process (SIGKILL) left behind, done by the next build of the same output."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cfpairs.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: Path, directory: bool = False) -> None:
    """The permissions a plain open()/mkdir() would have given (mkstemp/mkdtemp make them private)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(final: Path) -> list[Path]:
    """Remove `.NAME.<pid>.*.part` files or folders beside `final` whose process is gone."""
    removed = []
    for part in Path(final).parent.glob(f".{Path(final).name}.*.part"):
        pid = part.name[len(Path(final).name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(part, ignore_errors=True) if part.is_dir() else part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def part_prefix(final: Path) -> str:
    return f".{Path(final).name}.{os.getpid()}."


def _writable_folder(folder: Path, what: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what}: folder {folder} is not writable")


def check_output_file(path, force: bool, option: str = "--out") -> None:
    """Before any work: the folder exists and is writable, and `path` is free (or --force)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{option} {path}: output folder {path.parent} does not exist")
    _writable_folder(path.parent, f"{option} {path}")
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder, not a file")
    if path.exists() and not force:
        raise UserError(f"{option} {path}: already exists (use --force to replace it)")


def check_output_dir(path, force: bool, option: str = "--out") -> None:
    """Before any work: `path` is not a file, is empty or absent (or --force), and can be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise UserError(f"{option} {path}: already exists and is not empty (use --force to replace it)")
    existing = next(p for p in [path.parent, *path.parent.parents] if p.exists())
    if not existing.is_dir():
        raise UserError(f"{option} {path}: {existing} is a file, not a folder")
    _writable_folder(existing, f"{option} {path}")


@contextmanager
def staged_dir(final, force: bool, option: str = "--out"):
    """A fresh temporary folder beside `final` to fill; when the block succeeds it takes the
    final name (replacing an old folder only with --force, and only now, when complete); when it
    fails or is interrupted it is removed. A SIGKILL leaves only the .part, never the final name."""
    final = Path(final)
    check_output_dir(final, force, option)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(final)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=part_prefix(final), suffix=".part"))
    public_mode(tmp, directory=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_dir(tmp, final, force, option)


def publish_dir(tmp: Path, final: Path, force: bool, option: str = "--out") -> None:
    old = None
    if final.exists():
        if any(final.iterdir()) and not force:  # appeared while we worked
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"{option} {final}: already exists and is not empty (use --force to replace it)")
        old = final.with_name(f"{part_prefix(final)}old.part")
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
