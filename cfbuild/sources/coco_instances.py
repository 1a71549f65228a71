"""COCO `instances_<split>.json` through pycocotools: per-image multi-hot labels over the 80 classes."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfpairs.arrays import index_of as _lookup
from cfpairs.errors import UserError


@dataclass
class CocoInstances:
    path: Path
    image_ids: np.ndarray        # (N,) sorted
    category_ids: np.ndarray     # (C,) sorted COCO category ids: class c = category_ids[c]
    class_names: list            # (C,)
    instances: np.ndarray        # (N, C) int32 instance counts per image and class
    ann_ids: np.ndarray          # (A,) annotation ids, sorted
    ann_image_row: np.ndarray    # (A,) row of each annotation's image
    ann_class: np.ndarray        # (A,) class of each annotation

    @property
    def labels(self) -> np.ndarray:
        return (self.instances > 0).astype(np.float32)

    def rows_of(self, image_ids: np.ndarray) -> np.ndarray:
        """Row of each image id, -1 when the file has no such image."""
        return _lookup(self.image_ids, image_ids)

    def class_of(self, category_ids: np.ndarray) -> np.ndarray:
        return _lookup(self.category_ids, category_ids)

    def annotation_rows(self, ann_ids: np.ndarray) -> np.ndarray:
        return _lookup(self.ann_ids, ann_ids)


def load_instances(path) -> CocoInstances:
    """Read one instances file with pycocotools (its progress prints are kept off stdout)."""
    from pycocotools.coco import COCO

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: COCO instances file not found")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        categories = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c["id"])
        category_ids = np.array([c["id"] for c in categories], np.int64)
        names = [str(c["name"]) for c in categories]
        image_ids = np.array(sorted(coco.getImgIds()), np.int64)
        anns = sorted(coco.anns.values(), key=lambda a: a["id"])
        ann_ids = np.array([a["id"] for a in anns], np.int64)
        ann_images = np.array([a["image_id"] for a in anns], np.int64)
        ann_cats = np.array([a["category_id"] for a in anns], np.int64)
    except (json.JSONDecodeError, AssertionError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a COCO instances file ({type(exc).__name__}: {exc})") from None
    rows, classes = _lookup(image_ids, ann_images), _lookup(category_ids, ann_cats)
    for bad, what, values in ((rows < 0, "image_id", ann_images), (classes < 0, "category_id", ann_cats)):
        if bad.any():
            first = np.flatnonzero(bad)[0]
            raise UserError(f"{path}: annotation {ann_ids[first]} has unknown {what} {values[first]}")
    instances = np.zeros((len(image_ids), len(category_ids)), np.int32)
    np.add.at(instances, (rows, classes), 1)
    return CocoInstances(path, image_ids, category_ids, names, instances, ann_ids, rows, classes)
