"""sha256 of large files (region feature files run to tens of GB), remembered between runs by the
file's real path, size, modification time and inode in the user's cache
(`$CFPAIRS_CACHE_DIR`, else `$XDG_CACHE_HOME/cfpairs`, else `~/.cache/cfpairs`): a sweep's runs
check a linked feature file against the store's `sources` without hashing it again. A file
rewritten in place changes its mtime (or size), so its entry no longer applies; a cache that cannot
be read or written is ignored (the file is hashed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cfpairs.jsontext import strict_loads
from cfpairs.outputs.basics import write_text_atomic

CACHE_FILE = "sha256.json"


def cache_dir() -> Path:
    if os.environ.get("CFPAIRS_CACHE_DIR"):
        return Path(os.environ["CFPAIRS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cfpairs"


def cached_sha256(path) -> tuple[int, str]:
    """(size, sha256) of the file at `path`, from the cache when the file is unchanged since."""
    from cfpairs.writer import file_sha256  # noqa: PLC0415  (the writer's h5py import only when hashing)

    real = os.path.realpath(path)
    info = os.stat(real)
    key = f"{real}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}"
    cache = _read()
    if isinstance(cache.get(key), str):
        return info.st_size, cache[key]
    digest = file_sha256(Path(real))
    _write({**cache, key: digest})
    return info.st_size, digest


def _read() -> dict:
    try:
        found = strict_loads((cache_dir() / CACHE_FILE).read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(cache: dict) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / CACHE_FILE, json.dumps(cache))
    except OSError:
        pass
