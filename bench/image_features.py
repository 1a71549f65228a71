"""Images per second of `cfbuild features` on this machine: EfficientNet-Lite0 (its real weights)
and ResNet-50 (random weights: the speed is the same) over COCO-sized JPEGs (640 x 480, textured),
with decoding in the main process (--workers 0) or beside it (--workers 1), and with --grid; and
decoding alone (JPEG decode, resize, normalise on one core), the rate a GPU run would be held to
per decoding worker.

Usage: python bench/image_features.py [--smoke]   Prints key=value lines, ends with ratio=<images/s
with a decoding worker over without>. --smoke: a few small images (CI runs it: the script keeps
working; its figures mean nothing).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cfbuild.images.backbones import BACKBONES
from cfbuild.images.extract import Job, extract
from cfbuild.images.files import DecodedImages, list_images
from cfbuild.images.resnet import ResNet


def write_images(folder: Path, n: int, size: tuple) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    for i in range(n):
        base = 128 + 60 * np.sin(x / (9 + i % 7)) * np.cos(y / (13 + i % 5))
        pixels = np.clip(base[..., None] + rng.normal(0, 20, (*base.shape, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"COCO_train2014_{i:012d}.jpg", quality=90)


def measure(name: str, folder: Path, out: Path, **settings) -> float:
    report = extract(Job(images=(folder,), **settings), out)
    print(f"run={name} images={report['computed']} seconds={report['seconds']:.2f} "
          f"images_per_second={report['images_per_second']:.2f}", flush=True)
    return report["images_per_second"]


def measure_decoding(folder: Path) -> float:
    """Images per second of the decoding a worker does (the network not run), on one core."""
    images = DecodedImages(list_images([folder]), BACKBONES["efficientnet-lite0"].preprocessing)
    start = time.perf_counter()
    for i in range(len(images)):
        images[i]
    rate = len(images) / (time.perf_counter() - start)
    print(f"run=decode-only-one-core images={len(images)} images_per_second={rate:.2f}", flush=True)
    return rate


def main(argv: list) -> None:
    smoke = "--smoke" in argv
    n, size = (6, (96, 72)) if smoke else (256, (640, 480))
    threads = 2
    print(f"images={n} size={size[0]}x{size[1]} torch_threads={threads}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "imgs").mkdir()
        write_images(tmp / "imgs", n, size)
        torch.set_num_threads(1)
        measure_decoding(tmp / "imgs")
        torch.save(ResNet("resnet50").state_dict(), tmp / "r50.pth")
        common = dict(batch_size=32, threads=threads, force=True)
        no_worker = measure("lite0-workers0", tmp / "imgs", tmp / "a.h5", workers=0, **common)
        one_worker = measure("lite0-workers1", tmp / "imgs", tmp / "b.h5", workers=1, **common)
        measure("lite0-grid-workers1", tmp / "imgs", tmp / "c.h5", workers=1, grid=True, **common)
        measure("resnet50-workers1", tmp / "imgs", tmp / "d.h5", workers=1, backbone="resnet50",
                weights=tmp / "r50.pth", **common)
    print(f"ratio={one_worker / no_worker:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
