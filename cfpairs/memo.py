"""What reading an unchanged store found, remembered in this process: a campaign's runs (and a
command's stages) open one store many times, and its structure walk and checks cost more than a
toy run's training. A file's version is its real path, device, inode, size and modification and
change times: a store rewritten or damaged in place is a new version, checked again. Only stores
whose data is all their own are remembered (linked feature files are checked each time)."""

from __future__ import annotations

import copy
import os
from collections import OrderedDict

LIMIT = 64  # versions remembered per kind of result
_found: dict = {}


SETTINGS = ("CFPAIRS_MAX_EXPANSION",)  # environment variables the checks read


def file_version(path) -> tuple | None:
    """(real path, device, inode, size, mtime_ns, ctime_ns, the checks' settings), or None when it
    cannot be read."""
    try:
        real = os.path.realpath(path)
        info = os.stat(real)
    except OSError:
        return None
    settings = tuple(os.environ.get(name) for name in SETTINGS)
    return real, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, settings


def recall(kind: str, version: tuple | None, *args):
    """A copy of what `remember` kept for this version and arguments, else None."""
    found = _found.get(kind, {}).get((version, args)) if version is not None else None
    return copy.deepcopy(found)


def remember(kind: str, version: tuple | None, value, *args) -> None:
    if version is None or value is None:
        return
    kept = _found.setdefault(kind, OrderedDict())
    kept[(version, args)] = copy.deepcopy(value)
    while len(kept) > LIMIT:
        kept.popitem(last=False)


def forget() -> None:
    """Remember nothing (a benchmark timing the checks themselves)."""
    _found.clear()
