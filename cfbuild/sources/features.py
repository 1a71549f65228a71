"""Image feature files behind one interface: bottom-up TSV, bottom-up HDF5 + its imgid2idx
pickle, pooled `.npz`, and the features files `cfbuild features` writes. Builders never look at a file's suffix; `open_feature_files`
does, once, and closes every file on every path (success or error).

Each file yields, for the keys a build wants:
- `images(wanted, seen)`: (key, Image) per image (boxes, per-box features, size when known);
- `vectors(wanted, seen)`: (keys, (n, D) vectors) blocks, per-box features mean-pooled.
`seen` ({key: file name}) is shared by the files of one build: a key in two files is an error.
After reading, `source_entries()` gives the files' `sources` entries (name, size, sha256).

Adding a format = one class here, registered in FORMATS by suffix.
"""

from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from cfpairs.errors import UserError
from cfbuild.sources.bottomup_h5 import FEATURES, H5Features
from cfbuild.sources.bottomup_tsv import iter_tsv
from cfbuild.sources.extracted import Extracted, is_extracted
from cfbuild.sources.pooled_npz import NpzVectors
from cfpairs.store import describe_source, describe_source_stat

MANIFEST = "bottom_up_features"  # data_manifests/bottom_up_features.json
BLOCK = 256  # images per read


@dataclass
class Image:
    boxes: np.ndarray            # (R, 4) float32 pixels x1, y1, x2, y2
    features: np.ndarray         # (R, D)
    size: tuple | None           # (width, height) when the file gives it


def claim(seen: dict, keys, path: Path) -> None:
    """Record `keys` as read from `path`; a key some other file already gave is an error."""
    clash = [k for k in keys if k in seen] if seen else []
    if clash:
        raise UserError(f"feature key {clash[0]} is in both {seen[clash[0]]} and {path.name}")
    seen.update(dict.fromkeys(keys, path.name))


class FeatureFile:
    linkable = False       # an HDF5 dataset the store can link to instead of copying
    needs_index = False    # takes the next --imgid2idx pickle

    def __init__(self, path, index_path=None, key=int):
        self.path, self.key = Path(path), key

    def images(self, wanted: set, seen: dict) -> Iterator[tuple]:
        raise NotImplementedError

    def vectors(self, wanted: set, seen: dict) -> Iterator[tuple]:
        for key, image in self.images(wanted, seen):
            yield [key], image.features.mean(axis=0, dtype=np.float64)[None]

    def source_entries(self) -> list:
        return [describe_source(self.path, MANIFEST)]

    def close(self) -> None:
        pass


class TsvFile(FeatureFile):
    """Bottom-up TSV, streamed once; its sha256 comes from the same read."""

    def __init__(self, path, index_path=None, key=int):
        super().__init__(path, key=key)
        self._sha: list = []

    def images(self, wanted, seen):
        for key, image in iter_tsv(self.path, wanted, self._sha, key=self.key):
            claim(seen, [key], self.path)
            if image is not None:
                yield key, Image(image.boxes, image.features, (image.width, image.height))

    def source_entries(self):
        if not self._sha:
            return [describe_source(self.path, MANIFEST)]
        return [{**describe_source_stat(self.path, MANIFEST), "sha256": self._sha[0]}]


class H5File(FeatureFile):
    """Bottom-up HDF5 (`image_features`, `image_bb`, optional `spatial_features`) and its pickle."""
    linkable, needs_index = True, True
    dataset = FEATURES

    def __init__(self, path, index_path=None, key=int, pooled: bool = False):
        super().__init__(path, key=key)
        self.source = H5Features(path, index_path, key=key, pooled=pooled)
        self.index_path = self.source.index_path

    def _rows(self, wanted, seen) -> np.ndarray:
        ids = self.source.image_id
        present = ids[ids != (-1 if self.key is int else "")]
        claim(seen, present.tolist(), self.path)
        if self.key is int:
            return np.flatnonzero(np.isin(ids, np.fromiter(wanted, np.int64, len(wanted))))
        return np.array([r for r, k in enumerate(ids) if k in wanted], np.int64)

    def images(self, wanted, seen):
        rows = self._rows(wanted, seen)
        boxes, sizes = self.source.boxes(), self.source.sizes()
        for start in range(0, len(rows), BLOCK):
            block = rows[start:start + BLOCK]
            for row, feats in zip(block, self.source.read(block)):
                yield self.source.image_id[row], Image(boxes[row], feats, None if sizes is None else tuple(sizes[row]))

    def vectors(self, wanted, seen):
        rows = self._rows(wanted, seen)
        for start in range(0, len(rows), BLOCK * 16):
            block = rows[start:start + BLOCK * 16]
            yield [self.source.image_id[r] for r in block], self.source.pooled(block)

    def source_entries(self):
        return [describe_source(self.path, MANIFEST), describe_source(self.index_path, MANIFEST)]

    def close(self):
        self.source.close()


class NpzFile(FeatureFile):
    """Already pooled vectors, one array per key (no boxes: pooled stores only)."""

    def __init__(self, path, index_path=None, key=str):
        super().__init__(path, key=key)
        self.npz = NpzVectors(path)

    def images(self, wanted, seen):
        raise UserError(f"{self.path}: .npz holds pooled vectors without boxes; region stores need "
                        "bottom-up TSV or HDF5 features")

    def vectors(self, wanted, seen):
        claim(seen, self.npz.keys, self.path)
        for key in [k for k in self.npz.keys if k in wanted]:
            vector = self.npz.vector(key)
            yield [key], (vector.mean(axis=0) if vector.ndim == 2 else vector)[None]

    def close(self):
        self.npz.close()


class ExtractedFile(FeatureFile):
    """A features file of `cfbuild features`: pooled vectors, grid regions when made with --grid."""

    def __init__(self, path, index_path=None, key=int, pooled: bool = False):
        super().__init__(path, key=key)
        self.source = Extracted(path, key=key)
        self.identity = self.source.identity

    def _rows(self, wanted, seen) -> np.ndarray:
        claim(seen, [k for k in self.source.keys if k is not None], self.path)
        return self.source.rows_of(wanted)

    def images(self, wanted, seen):
        features, boxes, sizes = self.source.region_rows()
        for row in self._rows(wanted, seen):
            yield self.source.keys[row], Image(boxes[row], features[row], tuple(int(v) for v in sizes[row]))

    def vectors(self, wanted, seen):
        rows = np.sort(self._rows(wanted, seen))
        for start in range(0, len(rows), BLOCK * 16):
            block = rows[start:start + BLOCK * 16]
            yield [self.source.keys[r] for r in block], self.source.pooled(block)

    def source_entries(self):
        return [self.source.source_entry()]

    def close(self):
        self.source.close()


FORMATS = {".tsv": TsvFile, ".npz": NpzFile}  # anything else is HDF5: ours (cfbuild features) or bottom-up


def format_of(path) -> type:
    suffix = Path(path).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    return ExtractedFile if is_extracted(path) else H5File


def check_one_extraction(files: list) -> dict | None:
    """The extraction all `files` share (None when none was made by `cfbuild features`); files made
    with other backbones, weights or preprocessing, or mixed with features of unknown making, are refused."""
    ours = [f for f in files if isinstance(f, ExtractedFile)]
    if not ours:
        return None
    first = ours[0]
    for f in ours[1:]:
        if f.identity != first.identity:
            what = next(k for k in first.identity if first.identity[k] != f.identity.get(k))
            raise UserError(f"--features {f.path.name} and {first.path.name} were extracted differently ({what}: "
                            f"{_shown(f.identity.get(what))} vs {_shown(first.identity[what])}); extract every image "
                            "with the same cfbuild features settings")
    others = [f for f in files if not isinstance(f, ExtractedFile)]
    if others:
        raise UserError(f"--features {others[0].path.name}: features of unknown making cannot be mixed with "
                        f"{first.path.name} ({first.identity['backbone']}, extracted by cfbuild features); extract "
                        "every image the same way")
    return first.identity


def _shown(value) -> str:
    if isinstance(value, dict) and "sha256" in value:
        return f"{value.get('file')} sha256 {str(value['sha256'])[:12]}"
    return json.dumps(value, sort_keys=True)[:100]


@contextmanager
def open_feature_files(paths: list, indexes: list, key=int, pooled: bool = False):
    """The feature files in order, each HDF5 one paired with the next imgid2idx pickle; all closed
    when the block ends, however it ends."""
    kinds = [format_of(p) for p in paths]
    wanted = sum(k.needs_index for k in kinds)
    if wanted != len(indexes):
        raise UserError(f"{wanted} HDF5 feature file(s) need as many --imgid2idx pickles, in the same order; "
                        f"got {len(indexes)}")
    pending = list(indexes)
    with ExitStack() as stack:
        files = []
        for path, kind in zip(paths, kinds):
            index = pending.pop(0) if kind.needs_index else None
            extra = {"pooled": True} if pooled and kind is H5File else {}
            files.append(kind(path, index, key=key, **extra))
            stack.callback(files[-1].close)
        check_one_extraction(files)
        yield files
