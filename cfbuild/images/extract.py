"""`cfbuild features`: images in, a features file out (`featfile`), batch by batch.

A DataLoader's workers decode and resize; the network runs on `device`; each batch's pooled vectors
(and grid cells with their boxes) are appended and flushed before the next, so memory stays one
batch and a killed run loses at most one batch. An image that cannot be decoded stops the job with
its path and the reason, unless `skip_bad`: then it is left out and listed in the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError
from cfpairs.progress import Progress, note, stop_if_requested
from cfbuild.images.featfile import FeatureWriter, listing_sha256
from cfbuild.images.files import DecodedImages, list_images


@dataclass
class Job:
    images: tuple = ()          # folders
    lists: tuple = ()           # list files
    backbone: str = "efficientnet-lite0"
    weights: Path | None = None
    image_size: int | None = None
    grid: bool = False
    device: str = "cpu"
    batch_size: int = 32
    workers: int = 1
    threads: int | None = None
    skip_bad: bool = False
    force: bool = False


def grid_boxes(sizes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(B, rows*cols, 4) each cell's box (x1, y1, x2, y2) in its image's pixels, row-major like the
    flattened feature map: the whole image was resized to the network's input, so cell (i, j)
    covers [j/cols, (j+1)/cols] x [i/rows, (i+1)/rows] of it."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    unit = np.stack([j / cols, i / rows, (j + 1) / cols, (i + 1) / rows], -1).reshape(-1, 4)
    scale = np.concatenate([sizes, sizes], axis=1).astype(np.float32)[:, None, :]  # (w, h, w, h)
    return (unit[None] * scale).astype(np.float32)


def extract(job: Job, out: Path) -> dict:
    """Run the job; returns the report (also stored in the file)."""
    import torch  # noqa: PLC0415
    from cfbuild.images.backbones import load_backbone  # noqa: PLC0415

    files = list_images(job.images, job.lists)
    device = _device(job.device)
    if job.threads:
        torch.set_num_threads(job.threads)
    loaded = load_backbone(job.backbone, job.weights, job.image_size)
    extraction = {**loaded.identity, "grid": job.grid}
    writer = FeatureWriter(out, extraction, listing_sha256(files), job.force, (*job.images, *job.lists))
    done = writer.open()
    try:
        report = _run(job, files, done, loaded, device, writer)
        if not writer.rows:
            raise UserError(f"none of the {len(files)} images could be read (first: {report['bad_first'][0]['path']}: "
                            f"{report['bad_first'][0]['error']})")
        return {**report, "out": str(writer.finish(report))}
    except BaseException:
        writer.close()
        if writer.rows:
            note(f"{writer.partial} keeps {writer.rows} of {len(files)} images; run the same command again to "
                 "continue")
        raise


def _device(name: str):
    import torch  # noqa: PLC0415
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available here (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name (cpu, cuda, cuda:1)") from None


def _run(job: Job, files: list, done: set, loaded, device, writer) -> dict:
    import torch  # noqa: PLC0415
    from torch.utils.data import DataLoader, Subset  # noqa: PLC0415

    todo = [i for i, f in enumerate(files) if f.key not in done]
    dataset = Subset(DecodedImages(files, loaded.preprocessing), todo)
    loader = DataLoader(dataset, batch_size=job.batch_size, num_workers=job.workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    network = loaded.network.to(device)
    bad, start, computed = [], time.monotonic(), 0
    with Progress(len(files), "features", unit="img") as bar, torch.inference_mode():
        bar.update(len(files) - len(todo))
        for index, pixels, sizes, errors in loader:
            stop_if_requested()
            ok = np.array([not e for e in errors])
            if ok.any():  # written first: a bad image that stops the job leaves the others of its batch done
                _write_batch(writer, network, files, index[ok], pixels[ok].to(device), sizes[ok].numpy(), job.grid)
            for i in np.flatnonzero(~ok):
                image = files[int(index[i])]
                if not job.skip_bad:
                    raise UserError(f"{image.path}: cannot be read as an image ({errors[i]}); fix or remove it, or "
                                    "use --skip-bad to leave it out")
                bad.append({"path": image.shown, "error": errors[i]})
            computed += len(index)
            bar.set_postfix(img_per_s=f"{computed / max(time.monotonic() - start, 1e-9):.1f}")  # log lines too
            bar.update(len(index))
    seconds = time.monotonic() - start
    return {"images": len(files), "computed": len(todo) - len(bad), "resumed": len(files) - len(todo),
            "seconds": round(seconds, 3), "images_per_second": round((len(todo) - len(bad)) / max(seconds, 1e-9), 2),
            "bad": len(bad), "bad_first": bad[:20], **({"skip_bad": True} if job.skip_bad else {})}


def _write_batch(writer, network, files, index, pixels, sizes: np.ndarray, grid: bool) -> None:
    fmap = network.features(pixels).float()                    # (B, D, H, W)
    pooled = fmap.mean(dim=(2, 3)).cpu().numpy()
    chosen = [files[int(i)] for i in index]
    extra = {}
    if grid:
        b, d, h, w = fmap.shape
        extra = {"grid": fmap.flatten(2).transpose(1, 2).cpu().numpy(), "boxes": grid_boxes(sizes, h, w)}
    writer.append([f.key for f in chosen], [f.shown for f in chosen], sizes.astype(np.int32), pooled, **extra)
