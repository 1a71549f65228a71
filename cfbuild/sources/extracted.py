"""Features files written by `cfbuild features` (`cfbuild.images.featfile`): pooled vectors, and
grid regions with boxes when extracted with --grid. No index pickle: the file names its rows.

Keys are file stems; a COCO original's stem (`COCO_train2014_000000000009`, or a bare number) is
also its image id (9), which is how `cfbuild coco` and `cfbuild vqa` name originals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np

from cfpairs.errors import UserError
from cfpairs.store import describe_source
from cfpairs.structure import plain_member

FORMAT = "cfpairs-features"
ORIGINAL = re.compile(r"^(?:COCO_[a-z]+\d{4}_)?(\d+)$", re.IGNORECASE)
BLOCK = 1024


def is_extracted(path) -> bool:
    try:
        with h5py.File(path, "r") as h5:
            value = h5.attrs.get("format")
    except (OSError, ValueError):
        return False
    return (value.decode() if isinstance(value, bytes) else value) == FORMAT


def lookup_key(stem: str, key=str):
    """The key a builder asks for: a COCO original's image id (as `key` makes it), else the stem
    (None for an integer key that the stem does not hold)."""
    match = ORIGINAL.match(stem)
    if match:
        return key(int(match[1])) if key is int else str(int(match[1]))
    return None if key is int else stem


class Extracted:
    """One features file, opened for reading: `keys` (the lookup key of each row), `rows_of(wanted)`,
    `pooled(rows)`, `grid(row)`, `identity` (how it was extracted)."""

    def __init__(self, path, key=str):
        self.path = Path(path)
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise UserError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        attrs = self.h5.attrs
        for name in self.h5:
            plain_member(self.h5, name, self.path)
        self.extraction = json.loads(attrs["extraction"])
        stems = self.h5["key"].asstr()[()]
        self.keys = [lookup_key(s, key) for s in stems]
        self.has_grid = "grid_features" in self.h5

    @property
    def identity(self) -> dict:
        """What makes two extractions comparable: backbone, weights, preprocessing (not --grid)."""
        return {k: v for k, v in self.extraction.items() if k != "grid"}

    def rows_of(self, wanted: set) -> np.ndarray:
        return np.array([r for r, k in enumerate(self.keys) if k is not None and k in wanted], np.int64)

    def pooled(self, rows: np.ndarray) -> np.ndarray:
        return self.h5["pooled"][np.sort(rows)] if len(rows) else np.zeros((0, self.h5["pooled"].shape[1]), np.float32)

    def region_rows(self) -> tuple:
        if not self.has_grid:
            raise UserError(f"{self.path}: holds pooled vectors only; region stores need grid features (cfbuild "
                            "features --grid)")
        return self.h5["grid_features"], self.h5["grid_boxes"], self.h5["image_size"]

    def source_entry(self) -> dict:
        return describe_source(self.path)

    def close(self) -> None:
        self.h5.close()
