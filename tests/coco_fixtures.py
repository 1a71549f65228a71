"""A hand-worked COCO fixture in the real formats: instances JSON (read by pycocotools),
edited-image file names, per-box HDF5 features for originals and pooled .npz for edits."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import h5py
import numpy as np

CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
              {"id": 3, "name": "car", "supercategory": "vehicle"},
              {"id": 18, "name": "dog", "supercategory": "animal"}]
#                image: [(annotation id, category id)]
TRAIN = {9: [(101, 1), (102, 18)], 25: [(103, 1), (104, 1), (105, 3)], 30: [(106, 18)], 42: [(107, 3)], 77: []}
VAL = {5: [(201, 1), (202, 3)], 6: [(203, 18), (204, 3)], 8: [(205, 1), (206, 18)],
       11: [(207, 1), (208, 3), (209, 18)]}
# iv: the target is the removed category; 30 has no person: its edit leaves the label unchanged
EDITS_IV = {"train2014": [(9, 18), (25, 1), (30, 1)], "val2014": [(5, 1), (6, 18), (11, 1), (8, 18)]}
# cv: the target is the removed annotation; 103 is one of two persons in 25: unchanged
EDITS_CV = {"train2014": [(25, 103), (25, 105), (9, 101)], "val2014": [(11, 209)]}
BOXES, DIM = 3, 4


def stem(split: str, image: int, target: int) -> str:
    return f"COCO_{split}_{image:012d}_{target:012d}"


def instances(images: dict) -> dict:
    anns = [{"id": a, "image_id": img, "category_id": c, "bbox": [0, 0, 10, 10], "area": 100.0, "iscrowd": 0,
             "segmentation": [[0, 0, 10, 0, 10, 10]]} for img, pairs in images.items() for a, c in pairs]
    return {"info": {}, "licenses": [], "categories": CATEGORIES, "annotations": anns,
            "images": [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in images]}


def write_coco(root: Path, edits: dict = EDITS_IV) -> dict:
    """instances/, edited/, and features: originals per-box in HDF5 (int keys), edits pooled in .npz."""
    (root / "instances").mkdir(parents=True, exist_ok=True)
    for split, images in (("train2014", TRAIN), ("val2014", VAL)):
        (root / "instances" / f"instances_{split}.json").write_text(json.dumps(instances(images)))
        (root / "edited" / split).mkdir(parents=True, exist_ok=True)
        for image, target in edits.get(split, []):
            (root / "edited" / split / f"{stem(split, image, target)}.jpg").write_bytes(b"")
    rng = np.random.default_rng(0)
    originals = sorted(TRAIN) + sorted(VAL)
    per_box = rng.normal(size=(len(originals), BOXES, DIM)).astype(np.float32)
    with h5py.File(root / "orig.h5", "w") as h5:
        h5["image_features"] = per_box
        h5["image_bb"] = np.zeros((len(originals), BOXES, 4), np.float32)
    (root / "orig.pkl").write_bytes(pickle.dumps({img: row for row, img in enumerate(originals)}))
    edited = {stem(s, i, t): rng.normal(size=DIM).astype(np.float32) for s, pairs in edits.items() for i, t in pairs}
    np.savez(root / "edits.npz", **edited)
    vectors = {str(img): per_box[row].mean(0) for row, img in enumerate(originals)}
    vectors.update(edited)
    return vectors


def coco_args(root: Path, out: Path, *extra) -> list:
    return ["coco", "--instances-dir", root / "instances", "--edited-dir", root / "edited",
            "--features", root / "orig.h5", "--imgid2idx", root / "orig.pkl", "--features", root / "edits.npz",
            "--val-size", 1, "--seed", 1, "--out", out, *extra]


def write_spurious_coco(root: Path, n_train: int = 600, n_test: int = 400, edit_rate: float = 0.1,
                        classes: int = 6, dim: int = 32, together: float = 0.99, noise: float = 0.5,
                        seed: int = 0) -> None:
    """Synthetic COCO sources where classes come in pairs (0, 1), (2, 3)... that co-occur with
    probability `together` in train2014 but independently in val2014. Image vector = sum of its
    classes' prototypes + noise; an edit removes one present class's prototype (and its label)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(classes, dim)).astype(np.float32)
    cats = [{"id": c + 1, "name": f"class{c}", "supercategory": "x"} for c in range(classes)]
    (root / "instances").mkdir(parents=True, exist_ok=True)
    vectors, ann_id = {}, 1
    for split, n, first in (("train2014", n_train, 1), ("val2014", n_test, 10 ** 6)):
        pair_on = rng.random((n, classes // 2)) < 0.5
        partner_same = rng.random((n, classes // 2)) < (together if split == "train2014" else 0.5)
        lead = rng.random((n, classes // 2)) < 0.5
        present = np.zeros((n, classes), bool)
        present[:, 0::2] = pair_on & (partner_same | lead)
        present[:, 1::2] = pair_on & (partner_same | ~lead)
        images, anns = [], []
        (root / "edited" / split).mkdir(parents=True, exist_ok=True)
        for row in range(n):
            image = first + row
            images.append({"id": image, "file_name": f"{image}.jpg", "width": 10, "height": 10})
            for c in np.flatnonzero(present[row]):
                anns.append({"id": ann_id, "image_id": image, "category_id": int(c) + 1, "bbox": [0, 0, 1, 1],
                             "area": 1.0, "iscrowd": 0})
                ann_id += 1
            x = present[row] @ prototypes + noise * rng.normal(size=dim)
            vectors[str(image)] = x.astype(np.float32)
            if present[row].any() and rng.random() < edit_rate:
                c = int(rng.choice(np.flatnonzero(present[row])))
                edited = x - prototypes[c] + 0.1 * noise * rng.normal(size=dim)
                name = stem(split, image, c + 1)
                (root / "edited" / split / f"{name}.jpg").write_bytes(b"")
                vectors[name] = edited.astype(np.float32)
        data = {"info": {}, "licenses": [], "categories": cats, "images": images, "annotations": anns}
        (root / "instances" / f"instances_{split}.json").write_text(json.dumps(data))
    np.savez(root / "features.npz", **vectors)
