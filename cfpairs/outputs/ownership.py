"""What is ours, the only thing `--force` replaces: a store with the format's attribute, a folder
with the `.cfpairs` marker listing the files written there, a page with our signature."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cfpairs.outputs.basics import (HDF5_FORMATS, PAGE_SIGNS, FOLDER_KINDS, MARKER, PAGE_KINDS, generator,
                                    write_text_atomic)


def owner(path) -> str | None:
    """The kind of cfpairs output at `path`, or None when it is not one of ours."""
    path = Path(path)
    if path.is_dir():
        marker = read_marker(path)
        return marker.get("kind") if marker else None
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return HDF5_FORMATS.get(_hdf5_format(path))
    text = head.decode("utf-8", "replace")
    for sign, kind in zip(PAGE_SIGNS, PAGE_KINDS):
        if sign in text:
            return kind
    return None


def _hdf5_format(path: Path) -> str | None:
    """The root attribute `format` of an HDF5 file (None when absent or unreadable)."""
    import h5py  # noqa: PLC0415

    try:
        with h5py.File(path, "r") as h5:
            value = h5.attrs.get("format")
    except (OSError, ValueError):
        return None
    return value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else None


def read_marker(folder: Path) -> dict | None:
    try:
        value = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("written_by") == "cfpairs" else None


def write_marker(folder: Path, kind: str, files=None) -> None:
    """The marker: the folder's kind and the files written there (relative paths, sorted)."""
    listed = sorted(files) if files is not None else sorted(_files_written(folder))
    write_text_atomic(Path(folder) / MARKER, json.dumps({"written_by": "cfpairs", "version": generator(),
                                                         "kind": kind, "files": listed}, indent=1))


def _files_written(folder: Path) -> list:
    """Files under `folder` that no marked subfolder accounts for (those list their own)."""
    out = []
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        dirs[:] = [d for d in dirs if not (root / d / MARKER).is_file()]
        out += [str((root / f).relative_to(folder)) for f in files if f != MARKER]
    return out


def add_to_marker(folder: Path, *names: str) -> None:
    """Files written later into a marked folder (its kind kept), listed in its marker."""
    marker = read_marker(folder)
    if marker is None:
        raise RuntimeError(f"{folder}: no {MARKER} marker to add {', '.join(names)} to")
    write_marker(folder, marker["kind"], set(marker.get("files", [])) | set(names))


def is_our_temporary(name: str) -> bool:
    return name.startswith(".") and (name.endswith(".part") or name.endswith(".lock"))


def not_ours(path: Path, kind: str) -> str | None:
    """Why `path` may not be replaced by an output of `kind` (None: it is ours)."""
    found = owner(path)
    if kind in FOLDER_KINDS:
        if not path.is_dir():
            return "is not a folder"
        if found is None:
            sample = ", ".join(sorted(p.name for p in path.iterdir())[:3])
            return f"is not a folder written by cfpairs (no {MARKER} marker; it holds {sample})"
        foreign = foreign_files(path)
        if foreign:
            more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            return f"holds files cfpairs did not write ({', '.join(foreign[:3])}{more}); move them out first"
        return None
    if found is None:
        what = kind if kind in HDF5_FORMATS.values() else f"{kind} page"
        what = "features file" if what == "features" else what
        return f"is not a {what} written by cfpairs"
    return None


def foreign_files(folder: Path) -> list:
    """Files under a marked folder that neither its marker nor a marked subfolder lists."""
    marker = read_marker(folder)
    if marker is None:
        return sorted(p.name for p in folder.iterdir())
    listed = set(marker.get("files", []))
    out = []
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        for d in list(dirs):
            if (root / d / MARKER).is_file() or is_our_temporary(d):
                dirs.remove(d)
                if not is_our_temporary(d):
                    out += [str((root / d).relative_to(folder) / f) for f in foreign_files(root / d)]
        for f in files:
            relative = str((root / f).relative_to(folder))
            if f != MARKER and relative not in listed and not is_our_temporary(f):
                out.append(relative)
    return sorted(out)
