"""Bottom-up region features in HDF5: `image_features` (N, R, D), `image_bb` (N, R, 4),
optional `spatial_features` (N, R, 6), with the `{image_id: row}` index kept in a pickle.

Also read: already pooled vectors, `image_features` (N, D) without boxes (`pooled=True`),
and string keys (COCO's edited images are keyed by file stem: `key=str`)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from cfpairs.errors import UserError
from cfpairs.structure import plain_member
from cfbuild.sources.safe_pickle import load_pickle

FEATURES, BOXES, SPATIAL = "image_features", "image_bb", "spatial_features"


class H5Features:
    """One feature file and its row index; features are read only on request, by rows."""

    def __init__(self, path, index_path, key=int, pooled: bool = False):
        self.path, self.index_path, self.key = Path(path), Path(index_path), key
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise UserError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        for name in (FEATURES, BOXES, SPATIAL):
            if name in self.h5:
                plain_member(self.h5, name, self.path)
        if FEATURES not in self.h5:
            raise UserError(f"{self.path}: dataset {FEATURES!r} is missing")
        feats = self.h5[FEATURES]
        if not (pooled and feats.ndim == 2):
            if BOXES not in self.h5:
                raise UserError(f"{self.path}: dataset {BOXES!r} is missing (region features need "
                                f"{FEATURES} and {BOXES})")
            boxes = self.h5[BOXES]
            if feats.ndim != 3 or boxes.shape != feats.shape[:2] + (4,):
                raise UserError(f"{self.path}: {FEATURES} {feats.shape} and {BOXES} {boxes.shape} should be "
                                "(N, R, D) and (N, R, 4)")
        self.n_images, self.dim = feats.shape[0], feats.shape[-1]
        self.n_regions = feats.shape[1] if feats.ndim == 3 else 0
        self.dtype = feats.dtype
        self._boxes = None
        self.image_id = self._read_index()

    def _read_index(self) -> np.ndarray:
        """(N,) image id of each row, -1 for rows the index does not name."""
        index = load_pickle(self.index_path)
        if not isinstance(index, dict):
            raise UserError(f"{self.index_path}: expected a dict {{image_id: row}}, got {type(index).__name__}")
        try:
            ids = np.array([self.key(k) for k in index], dtype=np.int64 if self.key is int else object)
            rows = np.array([int(v) for v in index.values()], dtype=np.int64)
        except (TypeError, ValueError):
            kind = "integers" if self.key is int else "strings or integers"
            raise UserError(f"{self.index_path}: keys must be {kind} and values integer rows") from None
        bad = np.flatnonzero((rows < 0) | (rows >= self.n_images))
        if bad.size:
            raise UserError(f"{self.index_path}: image_id {ids[bad[0]]} -> row {rows[bad[0]]} is out of range for "
                            f"{self.path.name} ({self.n_images} rows)")
        uniq, counts = np.unique(rows, return_counts=True)
        if (counts > 1).any():
            raise UserError(f"{self.index_path}: row {uniq[counts > 1][0]} is given to more than one image_id")
        image_id = np.full(self.n_images, -1, np.int64) if self.key is int else np.full(self.n_images, "", object)
        image_id[rows] = ids
        return image_id

    def boxes(self) -> np.ndarray:
        """(N, R, 4) float32, read once (linked builds, materialised copies and sizes all need them)."""
        if self._boxes is None:
            self._boxes = self.h5[BOXES][()].astype(np.float32)
        return self._boxes

    def sizes(self) -> np.ndarray | None:
        """(N, 2) image width and height, recovered from `spatial_features` (x2/w, y2/h); None without it."""
        if SPATIAL not in self.h5:
            return None
        spatial, boxes = self.h5[SPATIAL][()], self.boxes()
        sizes = np.zeros((self.n_images, 2), np.int64)
        for axis, (pixel, ratio) in enumerate(((2, 2), (3, 3))):
            best = np.argmax(spatial[:, :, ratio], axis=1)  # the box reaching furthest: best precision
            num = np.take_along_axis(boxes[:, :, pixel], best[:, None], 1)[:, 0]
            den = np.take_along_axis(spatial[:, :, ratio], best[:, None], 1)[:, 0]
            sizes[:, axis] = np.rint(np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0))
        return sizes

    def pooled(self, rows: np.ndarray) -> np.ndarray:
        """(n, D) mean over each image's boxes (or the stored vectors when already pooled)."""
        feats = self.read(rows)
        return feats.mean(axis=1, dtype=np.float64).astype(np.float32) if feats.ndim == 3 else feats

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Features of `rows` (increasing) as an (n, R, D) array."""
        shape = (0, self.n_regions, self.dim) if self.n_regions else (0, self.dim)
        return self.h5[FEATURES][np.asarray(rows)] if len(rows) else np.zeros(shape, self.dtype)

    def close(self) -> None:
        self.h5.close()
