"""Region-store loader throughput: rows/s of cftrain's batches vs a plain h5py read of the same rows.

Writes a regions store (IMAGES images x 36 boxes x DIM features, 3 questions per image, every
other question with a masked counterfactual), once with the features copied in (gzip 1, one
image per chunk) and once linked to a plain HDF5 file (as bottom-up's). For one epoch of
pair-preserving batches it times (a) `PairBatches` (features read per batch, masks applied,
tokens and targets gathered) and (b) h5py alone reading each batch's image rows, in the same
order. Goal: ratio (a)/(b) >= 0.8.

Usage: python bench/regions_loader.py [--images 6000] [--dim 512] [--smoke]  (CI runs --smoke only)
Last line: ratio=<float>   (the lower of the two storage modes)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from cfpairs import open_store
from cfpairs.store import LinkedFeatures, StoreWriter
from cfpairs.writer import describe_source
from cftrain.data import PairBatches, load_split

BOXES = 36


def write_store(path: Path, features, n_images: int, rng) -> None:
    n = 3 * n_images
    made = np.arange(0, n, 2)
    rows = np.r_[np.arange(n), made]
    mask = np.ones((len(rows), BOXES), bool)
    mask[n:, :5] = False
    label_index = np.where(np.arange(len(rows))[:, None] < n, rng.integers(0, 100, (len(rows), 3)), -1)
    examples = {"id": [str(i) for i in range(len(rows))], "is_counterfactual": np.arange(len(rows)) >= n,
                "label_index": label_index.astype(np.int32),
                "label_score": np.where(label_index >= 0, 0.6, 0).astype(np.float32),
                "text": ["q"] * len(rows), "tokens": rng.integers(2, 50, (len(rows), 14)).astype(np.int32),
                "length": np.full(len(rows), 14, np.int32), "image_row": (rows // 3).astype(np.int64),
                "region_mask": mask}
    # a linked file is listed in the sources with its sha256, as cfbuild vqa lists it: readers check it
    sources = [describe_source(features.file)] if isinstance(features, LinkedFeatures) else []
    with StoreWriter(path, task="bench", input_kind="regions", label_kind="soft",
                     class_names=[str(i) for i in range(100)], build={}, sources=sources) as writer:
        writer.write_vocab(["<pad>", "<unk>"] + [f"w{i}" for i in range(48)])
        writer.write_regions(np.arange(n_images), np.zeros((n_images, BOXES, 4), np.float32), features)
        writer.write_split("train", examples, np.stack([made, n + np.arange(len(made))], 1),
                           ["masked_relevant"] * len(made))


def measure(store_path: Path, repeats: int = 3) -> tuple[float, float]:
    """Best of `repeats` epochs for each reader, alternating (both see the same warm page cache)."""
    with open_store(store_path, allow_external=True) as store:  # the linked store is this script's own
        data = load_split(store, "train")
    batches = PairBatches(data, 512, seed=0)
    plan = batches.plan()
    image_rows = [data.inputs["image_row"][np.concatenate([batches.groups[g] for g in groups])].numpy()
                  for groups in plan]
    rows = sum(len(r) for r in image_rows)
    loader, plain = 0.0, 0.0
    with h5py.File(store_path, "r") as h5:
        features = h5["regions/features"]
        for _ in range(repeats):
            start = time.perf_counter()
            for groups in plan:
                batches.make_batch(groups)
            loader = max(loader, rows / (time.perf_counter() - start))
            start = time.perf_counter()
            for wanted in image_rows:
                unique, inverse = np.unique(wanted, return_inverse=True)
                features[unique][inverse]
            plain = max(plain, rows / (time.perf_counter() - start))
    return loader, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, seconds (CI runs it)")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.dim = 60, 8
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(args.images, BOXES, args.dim)).astype(np.float32)
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with h5py.File(tmp / "feats.h5", "w") as h5:
            h5["image_features"] = feats
        for mode, features in (("materialized", feats), ("linked", LinkedFeatures(str(tmp / "feats.h5"), "image_features"))):
            write_store(tmp / f"{mode}.h5", features, args.images, rng)
            loader, plain = measure(tmp / f"{mode}.h5")
            ratios.append(loader / plain)
            print(f"{mode}: loader_rows_per_s={loader:.0f} h5py_rows_per_s={plain:.0f} ratio={loader / plain:.2f}")
    print(f"ratio={min(ratios):.2f}")


if __name__ == "__main__":
    main()
