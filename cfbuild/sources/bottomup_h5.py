"""Bottom-up region features in HDF5 (DESIGN §4): `image_features` (N, R, D), `image_bb` (N, R, 4),
optional `spatial_features` (N, R, 6), with the `{image_id: row}` index kept in a pickle."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from cfbuild.errors import UserError
from cfbuild.sources.safe_pickle import load_pickle

FEATURES, BOXES, SPATIAL = "image_features", "image_bb", "spatial_features"


class H5Features:
    """One feature file and its row index; features are read only on request, by rows."""

    def __init__(self, path, index_path):
        self.path, self.index_path = Path(path), Path(index_path)
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise UserError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        for name in (FEATURES, BOXES):
            if name not in self.h5:
                raise UserError(f"{self.path}: dataset {name!r} is missing (bottom-up HDF5 features need "
                                f"{FEATURES} and {BOXES})")
        feats, boxes = self.h5[FEATURES], self.h5[BOXES]
        if feats.ndim != 3 or boxes.shape != feats.shape[:2] + (4,):
            raise UserError(f"{self.path}: {FEATURES} {feats.shape} and {BOXES} {boxes.shape} should be "
                            "(N, R, D) and (N, R, 4)")
        self.n_images, self.n_regions, self.dim = feats.shape
        self.dtype = feats.dtype
        self.image_id = self._read_index()

    def _read_index(self) -> np.ndarray:
        """(N,) image id of each row, -1 for rows the index does not name."""
        index = load_pickle(self.index_path)
        if not isinstance(index, dict):
            raise UserError(f"{self.index_path}: expected a dict {{image_id: row}}, got {type(index).__name__}")
        try:
            ids = np.array([int(k) for k in index], dtype=np.int64)
            rows = np.array([int(v) for v in index.values()], dtype=np.int64)
        except (TypeError, ValueError):
            raise UserError(f"{self.index_path}: keys and values must be integers (image_id -> row)") from None
        bad = np.flatnonzero((rows < 0) | (rows >= self.n_images))
        if bad.size:
            raise UserError(f"{self.index_path}: image_id {ids[bad[0]]} -> row {rows[bad[0]]} is out of range for "
                            f"{self.path.name} ({self.n_images} rows)")
        uniq, counts = np.unique(rows, return_counts=True)
        if (counts > 1).any():
            raise UserError(f"{self.index_path}: row {uniq[counts > 1][0]} is given to more than one image_id")
        image_id = np.full(self.n_images, -1, np.int64)
        image_id[rows] = ids
        return image_id

    def boxes(self) -> np.ndarray:
        return self.h5[BOXES][()].astype(np.float32)

    def sizes(self) -> np.ndarray | None:
        """(N, 2) image width and height, recovered from `spatial_features` (x2/w, y2/h); None without it."""
        if SPATIAL not in self.h5:
            return None
        spatial, boxes = self.h5[SPATIAL][()], self.h5[BOXES][()]
        sizes = np.zeros((self.n_images, 2), np.int64)
        for axis, (pixel, ratio) in enumerate(((2, 2), (3, 3))):
            best = np.argmax(spatial[:, :, ratio], axis=1)  # the box reaching furthest: best precision
            num = np.take_along_axis(boxes[:, :, pixel], best[:, None], 1)[:, 0]
            den = np.take_along_axis(spatial[:, :, ratio], best[:, None], 1)[:, 0]
            sizes[:, axis] = np.rint(np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0))
        return sizes

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Features of `rows` (increasing) as an (n, R, D) array."""
        return self.h5[FEATURES][np.asarray(rows)] if len(rows) else np.zeros((0, self.n_regions, self.dim),
                                                                              self.dtype)

    def close(self) -> None:
        self.h5.close()
