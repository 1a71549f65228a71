"""The features file `cfbuild features` writes (HDF5, root attribute `format` = "cfpairs-features").

Root attributes: `format_version` (1), `extraction` (JSON: backbone, weights file and sha256,
preprocessing, grid), `report` (JSON). Datasets, one row per image: `key` (file stem), `path` (as
listed), `image_size` (N, 2) width and height, `pooled` (N, D) the mean of the last feature map;
with --grid, `grid_features` (N, R, D) its cells and `grid_boxes` (N, R, 4) each cell's box x1, y1,
x2, y2 in the image's pixels.

While it runs, each batch is its own file in the folder `FINAL.partial/` (written under a temporary
name and renamed, so a kill at any instant leaves whole batches), beside `job.json` (the extraction
and the image list's sha256). The same command continues from the batches there; other settings
are refused until --force. When every image is done, the batches are copied into FINAL (staged,
renamed when complete) and the folder is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np

from cfpairs.errors import UserError
from cfpairs.outputs import (OutputLock, Room, add_to_marker, check_output, register_folder_kind, staged,
                             write_marker)
from cfpairs.progress import Progress

FORMAT, VERSION = "cfpairs-features", 1
PARTIAL = "features-partial"
STR = h5py.string_dtype()
register_folder_kind(PARTIAL)


def partial_path(final: Path) -> Path:
    return final.with_name(final.name + ".partial")


def listing_sha256(files: list) -> str:
    return hashlib.sha256("".join(f"{f.key}\0{f.shown}\n" for f in files).encode()).hexdigest()


class FeatureWriter:
    """`open()` -> keys already done; `append(...)` per batch; `finish(report)` writes FINAL;
    `close()` on any other way out keeps the batches for the next run."""

    def __init__(self, final, extraction: dict, listing: str, force: bool = False, inputs=()):
        self.final, self.partial = Path(final), partial_path(Path(final))
        self.job = {"extraction": extraction, "listing": listing}
        self.force, self.inputs = force, inputs
        self.lock = OutputLock(self.final)
        self.batches: list = []
        self.rows = 0  # images in the batches

    def open(self) -> set:
        check_output(self.final, "features", self.force, self.inputs)
        check_output(self.partial, PARTIAL, True, self.inputs)  # only a folder of ours is continued or replaced
        self.lock.acquire()
        try:
            if self.partial.exists() and not self._same_job():
                shutil.rmtree(self.partial)
            if not self.partial.exists():
                self._start()
            return self._done_keys()
        except BaseException:
            self.lock.release()
            raise

    def _same_job(self) -> bool:
        try:
            started = json.loads((self.partial / "job.json").read_text())
        except (OSError, ValueError):
            started = None
        if started == self.job or self.force:
            return started == self.job
        what = _difference(started["extraction"], self.job["extraction"]) if started else ""
        raise UserError(f"{self.partial}: was started with another {what or 'list of images'}; run the command it "
                        "was started with, or use --force to start over")

    def _start(self) -> None:
        tmp = self.partial.with_name(f".{self.partial.name}.{os.getpid()}.part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / "job.json").write_text(json.dumps(self.job, sort_keys=True))
        write_marker(tmp, PARTIAL)
        os.rename(tmp, self.partial)

    def _done_keys(self) -> set:
        self.batches = sorted(self.partial.glob("batch-*.npz"))
        done = set()
        for path in self.batches:
            with np.load(path, allow_pickle=False) as batch:
                done.update(batch["key"].tolist())
        self.rows = len(done)
        return done

    def append(self, keys: list, shown: list, sizes: np.ndarray, pooled: np.ndarray, grid=None, boxes=None) -> None:
        columns = {"key": np.array(keys, str), "path": np.array(shown, str), "image_size": sizes, "pooled": pooled}
        if grid is not None:
            columns.update(grid_features=grid, grid_boxes=boxes)
        path = self.partial / f"batch-{len(self.batches):07d}.npz"
        tmp = self.partial / f".{path.name}.part"
        Room(tmp).ensure(sum(np.asarray(v).nbytes for v in columns.values()))
        with open(tmp, "wb") as fh:
            np.savez(fh, **columns)
            fh.flush()
            os.fsync(fh.fileno())
        add_to_marker(self.partial, path.name)  # listed first: a listed name that is absent is harmless
        os.replace(tmp, path)  # whole or absent, whenever the process dies
        self.batches.append(path)
        self.rows += len(keys)

    def finish(self, report: dict) -> Path:
        """Copy the batches into the final file, in order, one batch in memory at a time."""
        shapes, total = self._shapes()
        self.lock.release()  # staging takes the same lock for the final file
        with staged(self.final, "features", self.force, self.inputs) as tmp, h5py.File(tmp, "w") as h5:
            h5.attrs.update(format=FORMAT, format_version=VERSION, report=json.dumps(report),
                            extraction=json.dumps(self.job["extraction"], sort_keys=True))
            for name, (row, dtype) in shapes.items():
                h5.create_dataset(name, (total, *row), STR if dtype.kind == "U" else dtype,
                                  chunks=(min(max(total, 1), 64), *row) if total else None)
            start = 0
            with Progress(len(self.batches), "writing", unit="batch") as bar:
                for path in self.batches:
                    with np.load(path, allow_pickle=False) as batch:
                        n = len(batch["key"])
                        Room(Path(tmp), fd=h5.id.get_vfd_handle()).ensure(sum(batch[k].nbytes for k in shapes))
                        for name in shapes:
                            values = batch[name]
                            h5[name][start:start + n] = values.astype(object) if values.dtype.kind == "U" else values
                    start += n
                    bar.update()
        shutil.rmtree(self.partial, ignore_errors=True)
        return self.final

    def _shapes(self) -> tuple:
        shapes, total = {}, 0
        for path in self.batches:
            with np.load(path, allow_pickle=False) as batch:
                total += len(batch["key"])
                for name in batch.files:
                    shapes.setdefault(name, (batch[name].shape[1:], batch[name].dtype))
        return shapes, total

    def close(self) -> None:
        """Keep the batches done for the next run; a folder without one is removed."""
        if self.partial.exists() and not self.batches:
            shutil.rmtree(self.partial, ignore_errors=True)
        self.lock.release()


def _difference(old: dict, new: dict) -> str:
    for key in ("backbone", "weights", "preprocessing", "grid"):
        if old.get(key) != new.get(key):
            return f"{key} ({_short(old.get(key))} then, {_short(new.get(key))} now)"
    return ""


def _short(value) -> str:
    if isinstance(value, dict) and "sha256" in value:
        return f"{value.get('file')} sha256 {str(value['sha256'])[:12]}"
    return json.dumps(value, sort_keys=True)[:120]
