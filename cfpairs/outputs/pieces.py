"""Outputs built piece by piece, across runs: while a long job works, its finished pieces live in
the folder `FINAL.partial/` beside the final output, each written under a temporary name and
renamed (a kill at any instant leaves whole pieces), with `job.json` saying what job they belong
to. The same job started again continues from them; when the output is complete, the program
writes FINAL from them (staged like any output) and removes the folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from cfpairs.outputs.basics import register_folder_kind
from cfpairs.outputs.checks import check_output
from cfpairs.outputs.ownership import add_to_marker, is_our_temporary, write_marker
from cfpairs.outputs.staging import Room

KIND = "pieces"
JOB = "job.json"
register_folder_kind(KIND)


class Pieces:
    def __init__(self, final, job: dict, inputs=()):
        self.final = Path(final)
        self.folder = self.final.with_name(self.final.name + ".partial")
        self.job, self.inputs = job, inputs

    def started(self) -> dict | None:
        """The job the existing folder's pieces belong to (None: no folder; {} when unreadable).
        A folder that is not ours is refused (UserError), never continued or replaced."""
        if not self.folder.exists():
            return None
        check_output(self.folder, KIND, True, self.inputs)
        try:
            return json.loads((self.folder / JOB).read_text())
        except (OSError, ValueError):
            return {}

    def create(self) -> None:
        """A new folder for this job (any previous one, ours, removed first)."""
        self.remove()
        tmp = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / JOB).write_text(json.dumps(self.job, sort_keys=True))
        write_marker(tmp, KIND)
        os.rename(tmp, self.folder)

    def list(self, pattern: str = "*") -> list:
        return sorted(p for p in self.folder.glob(pattern) if p.name not in (JOB,) and not p.name.startswith("."))

    def add(self, name: str, nbytes: int, write) -> Path:
        """A piece: `write(binary file)` fills it under a temporary name, then it is renamed."""
        path = self.folder / name
        tmp = self.folder / f".{name}.part"
        Room(tmp).ensure(nbytes)
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        add_to_marker(self.folder, name)  # listed first: a listed name that is absent is harmless
        os.replace(tmp, path)
        return path

    def remove(self) -> None:
        if self.folder.exists():
            check_output(self.folder, KIND, True, self.inputs)
            shutil.rmtree(self.folder)


def remove_temporary(path) -> None:
    """Remove a program's temporary folder or file (a `.NAME.part`), nothing else."""
    path = Path(path)
    if not is_our_temporary(path.name):
        raise ValueError(f"{path}: not a temporary name of cfpairs")
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
