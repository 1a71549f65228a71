"""Write a store's /regions from bottom-up feature files: linked (no feature bytes copied) or
materialised (only the images some example uses, optionally float16)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cfbuild.arrays import index_of
from cfbuild.errors import UserError
from cfbuild.sources.bottomup_h5 import FEATURES, H5Features
from cfbuild.sources.bottomup_tsv import iter_tsv
from cfbuild.store import LinkedFeatures, StoreWriter, describe_source, describe_source_stat

BLOCK = 256  # images per read/write
MANIFEST = "bottom_up_features"  # data_manifests/bottom_up_features.json


@dataclass
class RegionTable:
    """What a builder needs to know about /regions once written (row m = image m)."""
    image_id: np.ndarray        # (M,) int64
    boxes: np.ndarray           # (M, R, 4) float32
    num_boxes: np.ndarray       # (M,) real boxes per image; the rest of R is padding
    sizes: np.ndarray | None    # (M, 2) width, height, when the sources give them
    linked: bool
    sources: list               # `sources` entries of the feature files

    def rows_of(self, image_ids) -> np.ndarray:
        """Row of each id in /regions, -1 when no feature file has it."""
        return index_of(self.image_id, image_ids)


def open_sources(features: list, indexes: list) -> list:
    """H5Features (paired in order with `indexes`) or a TSV path, per feature file."""
    h5_count = sum(Path(p).suffix.lower() != ".tsv" for p in features)
    if h5_count != len(indexes):
        raise UserError(f"{h5_count} HDF5 feature file(s) need as many --imgid2idx pickles, in the same order; "
                        f"got {len(indexes)}")
    pending = list(indexes)
    return [Path(p) if Path(p).suffix.lower() == ".tsv" else H5Features(p, pending.pop(0)) for p in features]


def _check_unique(seen: dict, ids, where: Path) -> None:
    ids = np.asarray(ids)
    clash = [int(i) for i in ids[ids >= 0] if int(i) in seen] if seen else []
    if clash:
        raise UserError(f"image_id {clash[0]} is in both {seen[clash[0]]} and {where}")
    seen.update(dict.fromkeys((int(i) for i in ids[ids >= 0]), where.name))


def write_linked(writer: StoreWriter, sources: list) -> RegionTable:
    """/regions rows = every row of the HDF5 files in order; features reached by link, not copied."""
    seen: dict = {}
    for src in sources:
        _check_unique(seen, src.image_id, src.path)
    image_id = np.concatenate([s.image_id for s in sources])
    boxes = np.concatenate([s.boxes() for s in sources])
    sizes = [s.sizes() for s in sources]
    writer.write_regions(image_id, boxes, [LinkedFeatures(str(s.path), FEATURES) for s in sources])
    entries = [e for s in sources for e in (describe_source(s.path, MANIFEST), describe_source(s.index_path, MANIFEST))]
    return RegionTable(image_id, boxes, np.full(len(image_id), boxes.shape[1], np.int32),
                       None if any(z is None for z in sizes) else np.concatenate(sizes), True, entries)


class _Appender:
    """Grows /regions/features block by block; keeps ids, boxes and sizes for `write_regions`."""

    def __init__(self, writer: StoreWriter, float16: bool):
        self.writer, self.float16 = writer, float16
        self.dataset = None
        self.ids, self.boxes, self.sizes, self.pending = [], [], [], []

    def add(self, image_id, boxes, features, size) -> None:
        self.ids.append(image_id)
        self.boxes.append(boxes)
        self.sizes.append(size)
        self.pending.append(features)
        if len(self.pending) >= BLOCK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        regions = max(f.shape[0] for f in self.pending)
        dim = self.pending[0].shape[1]
        if self.dataset is None:
            self.dataset = self.writer.begin_features(regions, dim, np.float16 if self.float16 else np.float32)
        if any(f.shape[1] != self.dataset.shape[2] for f in self.pending):
            raise UserError(f"feature width differs between images (expected {self.dataset.shape[2]})")
        start, regions = self.dataset.shape[0], max(regions, self.dataset.shape[1])
        block = np.zeros((len(self.pending), regions, self.dataset.shape[2]), self.dataset.dtype)
        for i, feats in enumerate(self.pending):
            block[i, :feats.shape[0]] = feats
        self.dataset.resize((start + len(block), regions, self.dataset.shape[2]))
        self.dataset[start:] = block
        self.pending = []

    def finish(self, sources: list) -> RegionTable:
        self.flush()
        if self.dataset is None:
            raise UserError("no feature file holds any image the questions use")
        regions = self.dataset.shape[1]
        counts = np.array([len(b) for b in self.boxes], np.int32)
        boxes = np.zeros((len(self.ids), regions, 4), np.float32)
        for i, b in enumerate(self.boxes):
            boxes[i, :len(b)] = b
        sizes = None if any(s is None for s in self.sizes) else np.array(self.sizes, np.int64)
        image_id = np.array(self.ids, np.int64)
        self.writer.write_regions(image_id, boxes, None, num_boxes=counts if (counts < regions).any() else None)
        return RegionTable(image_id, boxes, counts, sizes, False, sources)


def write_materialized(writer: StoreWriter, sources: list, needed, float16: bool = False) -> RegionTable:
    """Copy in the images in `needed`, in source order (files in order, rows/lines in order)."""
    needed = set(int(i) for i in needed)
    appender, seen, entries = _Appender(writer, float16), {}, []
    bar = tqdm(total=len(needed), desc="features", unit="img", disable=None)
    for src in sources:
        if isinstance(src, H5Features):
            _check_unique(seen, src.image_id, src.path)
            _copy_h5(src, needed, appender, bar)
            entries += [describe_source(src.path, MANIFEST), describe_source(src.index_path, MANIFEST)]
            continue
        sha: list = []
        for image_id, image in iter_tsv(src, needed, sha):
            _check_unique(seen, [image_id], src)
            if image is not None:
                appender.add(image_id, image.boxes, image.features, (image.width, image.height))
                bar.update()
        entries.append({**describe_source_stat(src, MANIFEST), "sha256": sha[0]})
    bar.close()
    return appender.finish(entries)


def _copy_h5(src: H5Features, needed: set, appender: _Appender, bar) -> None:
    rows = np.flatnonzero(np.isin(src.image_id, np.fromiter(needed, np.int64, len(needed))))
    boxes, sizes = src.boxes(), src.sizes()
    for start in range(0, len(rows), BLOCK):
        block = rows[start:start + BLOCK]
        for row, feats in zip(block, src.read(block)):
            appender.add(int(src.image_id[row]), boxes[row], feats, None if sizes is None else tuple(sizes[row]))
        bar.update(len(block))
