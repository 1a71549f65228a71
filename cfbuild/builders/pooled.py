"""One pooled vector per key (COCO image id or edited file stem) from any feature file
(`cfbuild.sources.features`): the COCO builder's feature lookup."""

from __future__ import annotations

import numpy as np

from cfpairs.errors import UserError
from cfpairs.progress import Progress
from cfbuild.sources.features import check_one_extraction, open_feature_files


class _Table:
    """The (n, D) result, filled key by key with checks: width, NaN, keys never given."""

    def __init__(self, keys: list):
        self.position = {k: i for i, k in enumerate(keys)}
        self.keys = keys
        self.filled = np.zeros(len(keys), bool)
        self.vectors: np.ndarray | None = None

    def put(self, path, keys: list, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(keys), -1)
        if self.vectors is None:
            self.vectors = np.zeros((len(self.keys), vectors.shape[1]), np.float32)
        if vectors.shape[1] != self.vectors.shape[1]:
            raise UserError(f"{path}: key {keys[0]}: vector of width {vectors.shape[1]}, "
                            f"expected {self.vectors.shape[1]}")
        bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        if bad.size:
            raise UserError(f"{path}: key {keys[bad[0]]}: NaN or infinite feature values")
        rows = [self.position[k] for k in keys]
        self.vectors[rows] = vectors
        self.filled[rows] = True

    def missing(self) -> list:
        return [k for k, done in zip(self.keys, self.filled) if not done]


def pooled_vectors(features: list, indexes: list, keys: list) -> tuple[np.ndarray, list, dict | None]:
    """(len(keys), D) float32 mean-pooled vectors in the order of `keys`, `sources` entries, and the
    extraction the files share when `cfbuild features` made them (else None)."""
    table, wanted, seen = _Table(keys), set(keys), {}
    bar = Progress(len(keys), "features", unit="img")
    with open_feature_files(features, indexes, key=str, pooled=True) as files:
        extraction = check_one_extraction(files)
        for f in files:
            for block_keys, vectors in f.vectors(wanted, seen):
                table.put(f.path, block_keys, vectors)
                bar.update(len(block_keys))
        entries = [e for f in files for e in f.source_entries()]
    bar.close()
    missing = table.missing()
    if missing:
        raise UserError(f"{len(missing)} feature key(s) found in no --features file (first: {', '.join(missing[:5])})")
    return table.vectors, entries, extraction
