"""Already pooled image vectors in a numpy `.npz`: one array per key (image id or edited file stem)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError


class NpzVectors:
    def __init__(self, path):
        self.path = Path(path)
        try:
            self.npz = np.load(self.path, allow_pickle=False)  # object arrays would need pickle: refused
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise UserError(f"{self.path}: not a readable .npz ({exc})") from None
        self.keys = list(self.npz.files)

    def vector(self, key: str) -> np.ndarray:
        try:
            return np.asarray(self.npz[key])
        except ValueError as exc:
            raise UserError(f"{self.path}: key {key}: {exc}") from None

    def close(self) -> None:
        self.npz.close()
