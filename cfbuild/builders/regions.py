"""Write a store's /regions from bottom-up feature files: linked (no feature bytes copied) or
materialised (only the images some example uses, optionally float16)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfpairs.arrays import index_of
from cfpairs.errors import UserError
from cfpairs.progress import Progress
from cfbuild.sources.features import BLOCK, FeatureFile, claim
from cfpairs.store import LinkedFeatures, StoreWriter


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

    def real_boxes(self, rows: np.ndarray) -> np.ndarray:
        """(n, R) bool: which of each row's image's R boxes are real (not padding)."""
        return np.arange(self.boxes.shape[1])[None, :] < self.num_boxes[rows][:, None]


def write_linked(writer: StoreWriter, files: list) -> RegionTable:
    """/regions rows = every row of the HDF5 files in order; features reached by link, not copied."""
    seen: dict = {}
    for f in files:
        claim(seen, f.source.image_id[f.source.image_id >= 0].tolist(), f.path)
    image_id = np.concatenate([f.source.image_id for f in files])
    boxes = np.concatenate([f.source.boxes() for f in files])
    sizes = [f.source.sizes() for f in files]
    writer.write_regions(image_id, boxes, [LinkedFeatures(str(f.path), f.dataset) for f in files])
    entries = [e for f in files for e in f.source_entries()]
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
        self.writer.room.ensure(block.nbytes)
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


def write_materialized(writer: StoreWriter, files: list[FeatureFile], needed, float16: bool = False) -> RegionTable:
    """Copy in the images in `needed`, in source order (files in order, rows/lines in order)."""
    needed = set(int(i) for i in needed)
    appender, seen = _Appender(writer, float16), {}
    bar = Progress(len(needed), "features", unit="img")
    for f in files:
        for image_id, image in f.images(needed, seen):
            appender.add(int(image_id), image.boxes, image.features, image.size)
            bar.update()
    bar.close()
    return appender.finish([e for f in files for e in f.source_entries()])
