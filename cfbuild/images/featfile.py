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
from pathlib import Path

import h5py
import numpy as np

from cfpairs.errors import UserError
from cfpairs.outputs import OutputLock, Pieces, Room, check_output, staged
from cfpairs.progress import Progress

FORMAT, VERSION = "cfpairs-features", 1
STR = h5py.string_dtype()


def listing_sha256(files: list) -> str:
    return hashlib.sha256("".join(f"{f.key}\0{f.shown}\n" for f in files).encode()).hexdigest()


class FeatureWriter:
    """`open()` -> keys already done; `append(...)` per batch; `finish(report)` writes FINAL;
    `close()` on any other way out keeps the batches for the next run."""

    def __init__(self, final, extraction: dict, listing: str, force: bool = False, inputs=()):
        self.final = Path(final)
        self.job = {"extraction": extraction, "listing": listing}
        self.pieces = Pieces(self.final, self.job, inputs)
        self.partial = self.pieces.folder
        self.force, self.inputs = force, inputs
        self.lock = OutputLock(self.final)
        self.batches: list = []
        self.rows = 0  # images in the batches

    def open(self) -> set:
        check_output(self.final, "features", self.force, self.inputs)
        self.lock.acquire()
        try:
            started = self.pieces.started()
            if started is not None and started != self.job and not self.force:
                what = _difference(started["extraction"], self.job["extraction"]) if started else ""
                raise UserError(f"{self.partial}: was started with another {what or 'list of images'}; run the "
                                "command it was started with, or use --force to start over")
            if started != self.job:
                self.pieces.create()
            return self._done_keys()
        except BaseException:
            self.lock.release()
            raise

    def _done_keys(self) -> set:
        self.batches = self.pieces.list("batch-*.npz")
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
        nbytes = sum(np.asarray(v).nbytes for v in columns.values())
        path = self.pieces.add(f"batch-{len(self.batches):07d}.npz", nbytes, lambda fh: np.savez(fh, **columns))
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
        self.pieces.remove()
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
        if not self.batches:
            self.pieces.remove()
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
