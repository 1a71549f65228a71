"""One pooled vector per key (COCO image id or edited file stem) from bottom-up TSV, HDF5
(per-box or already pooled) or .npz files: the COCO builder's feature lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from cfbuild.builders.regions import BLOCK, MANIFEST
from cfbuild.errors import UserError
from cfbuild.sources.bottomup_h5 import H5Features
from cfbuild.sources.bottomup_tsv import iter_tsv
from cfbuild.sources.pooled_npz import NpzVectors
from cfbuild.store import describe_source, describe_source_stat


class _Table:
    """The (n, D) result, filled key by key with checks: width, NaN, a key given twice."""

    def __init__(self, keys: list):
        self.position = {k: i for i, k in enumerate(keys)}
        self.keys = keys
        self.owner: list = [None] * len(keys)
        self.vectors: np.ndarray | None = None

    def put(self, path: Path, keys: list, vectors: np.ndarray) -> None:
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
        for key, row in zip(keys, rows):
            if self.owner[row] is not None:
                raise UserError(f"feature key {key} is in both {self.owner[row]} and {path.name}")
            self.owner[row] = path.name
        self.vectors[rows] = vectors

    def missing(self) -> list:
        return [k for k, o in zip(self.keys, self.owner) if o is None]


def pooled_vectors(features: list, indexes: list, keys: list) -> tuple[np.ndarray, list]:
    """(len(keys), D) float32 mean-pooled vectors in the order of `keys`, and `sources` entries."""
    table, entries, pending = _Table(keys), [], list(indexes)
    wanted = set(keys)
    bar = tqdm(total=len(keys), desc="features", unit="img", disable=None)
    for path in map(Path, features):
        suffix = path.suffix.lower()
        if suffix == ".tsv":
            sha: list = []
            for key, image in iter_tsv(path, wanted, sha, key=str):
                if image is not None:
                    table.put(path, [key], image.features.mean(axis=0, dtype=np.float64))
                    bar.update()
            entries.append({**describe_source_stat(path, MANIFEST), "sha256": sha[0]})
        elif suffix == ".npz":
            npz = NpzVectors(path)
            for key in [k for k in npz.keys if k in wanted]:
                vector = npz.vector(key)
                table.put(path, [key], vector.mean(axis=0) if vector.ndim == 2 else vector)
                bar.update()
            npz.close()
            entries.append(describe_source(path, MANIFEST))
        else:
            if not pending:
                raise UserError(f"{path}: an HDF5 feature file needs its --imgid2idx pickle (in the same order)")
            src = H5Features(path, pending.pop(0), key=str, pooled=True)
            _from_h5(src, table, wanted, bar)
            entries += [describe_source(path, MANIFEST), describe_source(src.index_path, MANIFEST)]
            src.close()
    bar.close()
    if pending:
        raise UserError(f"{len(pending)} --imgid2idx pickle(s) more than HDF5 feature files")
    missing = table.missing()
    if missing:
        raise UserError(f"{len(missing)} feature key(s) found in no --features file (first: {', '.join(missing[:5])})")
    return table.vectors, entries


def _from_h5(src: H5Features, table: _Table, wanted: set, bar) -> None:
    rows = np.array([r for r, k in enumerate(src.image_id) if k in wanted], np.int64)
    for start in range(0, len(rows), BLOCK * 16):
        block = rows[start:start + BLOCK * 16]
        table.put(src.path, [src.image_id[r] for r in block], src.pooled(block))
        bar.update(len(block))
