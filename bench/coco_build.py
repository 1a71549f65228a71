"""`cfbuild coco` at COCO 2014 scale on synthetic inputs: build time / pycocotools load time, peak RSS.

Writes instances_{train,val}2014.json shaped like the real ones (82,783 + 40,504 images,
~7.3 annotations per image with polygon segmentations), ~2.9 edited images per original
(the real train split has ~323k originals and edits), and small pooled features (HDF5
(N, 8) + key pickle); then times, each in its own process, the build and loading both
instances files with pycocotools. Goal: ratio <= 3.

Usage: python bench/coco_build.py [--scale 1.0] [--workdir DIR] [--smoke]  (CI runs --smoke only)
Last line: ratio=<float> peak_rss_mb=<int>
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import build_and_baseline  # noqa: E402

IMAGES = {"train2014": 82_783, "val2014": 40_504}
ANNS_PER_IMAGE, EDITS_PER_IMAGE, DIM = 7.3, 2.9, 8
CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def write_split(root: Path, split: str, image_ids: np.ndarray, first_ann: int, rng) -> tuple[list, int]:
    n = len(image_ids)
    counts = rng.poisson(ANNS_PER_IMAGE, n)
    owners = np.repeat(image_ids, counts)
    cats = rng.choice(CATEGORY_IDS, len(owners))
    with open(root / "instances" / f"instances_{split}.json", "w") as fh:
        fh.write('{"info": {}, "licenses": [], "categories": ')
        fh.write(json.dumps([{"id": c, "name": f"cat{c}", "supercategory": "s"} for c in CATEGORY_IDS]))
        fh.write(', "images": ' + json.dumps([{"id": int(i), "file_name": f"COCO_{split}_{i:012d}.jpg",
                                                "width": 640, "height": 480} for i in image_ids]))
        fh.write(', "annotations": [')
        polygon = np.round(rng.uniform(0, 640, (len(owners), 48)), 2)
        for k, (image, cat) in enumerate(zip(owners, cats)):
            ann = {"segmentation": [polygon[k].tolist()], "area": 1234.5, "iscrowd": 0, "image_id": int(image),
                   "bbox": [1.0, 2.0, 30.5, 40.25], "category_id": int(cat), "id": first_ann + k}
            fh.write(("," if k else "") + json.dumps(ann))
        fh.write("]}")
    folder = root / "edited" / split
    folder.mkdir(parents=True)
    keys = [str(i) for i in image_ids]
    present = {}
    for image, cat in zip(owners, cats):
        present.setdefault(int(image), set()).add(int(cat))
    for image, classes in present.items():
        for cat in sorted(classes)[:int(rng.poisson(EDITS_PER_IMAGE))]:
            name = f"COCO_{split}_{image:012d}_{cat:012d}"
            (folder / f"{name}.jpg").touch()
            keys.append(name)
    return keys, first_ann + len(owners)


def write_inputs(root: Path, scale: float) -> None:
    rng = np.random.default_rng(0)
    (root / "instances").mkdir()
    keys, next_ann = [], 1
    sizes = [int(n * scale) for n in IMAGES.values()]
    ids = rng.choice(600_000, sum(sizes), replace=False) + 1  # COCO ids are unique across splits
    for split, part in zip(IMAGES, np.split(ids, [sizes[0]])):
        split_keys, next_ann = write_split(root, split, np.sort(part), next_ann, rng)
        keys += split_keys
    with h5py.File(root / "pooled.h5", "w") as h5:
        h5["image_features"] = rng.normal(size=(len(keys), DIM)).astype(np.float32)
    (root / "pooled.pkl").write_bytes(pickle.dumps({k: row for row, k in enumerate(keys)}))
    print(f"{len(keys)} feature keys", flush=True)


COCO_LOAD = """
import contextlib, io, sys, time
from pycocotools.coco import COCO
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    for path in sys.argv[1:]:
        COCO(path)
print(time.perf_counter() - start)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of COCO 2014's image counts")
    parser.add_argument("--workdir", type=Path, help="where to write the inputs (default: a temporary folder)")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, seconds (CI runs it)")
    args = parser.parse_args()
    if args.smoke:
        args.scale = 0.002
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_inputs(root, args.scale)
        print(f"inputs written in {time.perf_counter() - start:.1f} s", flush=True)
        out = root / "coco.h5"
        files = sorted(str(p) for p in (root / "instances").glob("*.json"))
        build_s, peak_mb, load_s = build_and_baseline(
            ["coco", "--instances-dir", root / "instances", "--edited-dir", root / "edited", "--features",
             root / "pooled.h5", "--imgid2idx", root / "pooled.pkl", "--out", out,
             "--val-size", min(1000, int(IMAGES["train2014"] * args.scale) // 10)], COCO_LOAD, files)
        print(f"instances_mb={sum(Path(f).stat().st_size for f in files) / 1e6:.0f} "
              f"store_mb={out.stat().st_size / 1e6:.1f}")
        print(f"build_s={build_s:.2f} pycocotools_load_s={load_s:.2f}")
        print(f"ratio={build_s / load_s:.2f} peak_rss_mb={peak_mb}")


if __name__ == "__main__":
    main()
