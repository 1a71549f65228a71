"""Which images to read (folders walked, or a list file) and how each becomes a network's input.

Keys are file stems: COCO's `COCO_train2014_000000000009.jpg` and Agarwal et al.'s
`COCO_train2014_000000000009_000000000018.jpg` keep their names, so originals and edits line up
as they do in `cfbuild coco`. Decoding happens in the loader's workers; an image that cannot be
decoded comes back with its error instead of stopping them.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError

SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ImageFile:
    key: str        # the file's stem
    path: Path
    shown: str      # the path as listed (relative to its folder or list file): written to the features file


def list_images(folders=(), lists=()) -> list:
    """Every .jpg/.jpeg/.png under `folders` (walked, sorted; hidden names skipped) and every path in
    the `lists` files (one per line, relative to the list's folder; blank lines and # comments
    skipped). Two images with one stem are an error naming both."""
    found = []
    for folder in folders:
        folder = Path(folder)
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith(".") and name.lower().endswith(SUFFIXES):
                    path = Path(root) / name
                    _check_image_file(path, str(path))
                    found.append(ImageFile(path.stem, path, str(path.relative_to(folder))))
    for listing in lists:
        found += _listed(Path(listing))
    seen = {}
    for image in found:
        if image.key in seen:
            raise UserError(f"{image.path}: its key {image.key!r} is also {seen[image.key]} (keys are file stems; "
                            "rename one)")
        seen[image.key] = image.path
    if not found:
        where = ", ".join(str(p) for p in [*folders, *lists])
        raise UserError(f"{where}: no .jpg, .jpeg or .png image found")
    return found


def _listed(listing: Path) -> list:
    out = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = listing.parent / line
        inside = os.path.realpath(path).startswith(os.path.realpath(listing.parent) + os.sep)
        if Path(line).is_absolute() or not inside:
            raise UserError(f"{listing}: line {number}: {line}: outside the list's folder (a list names images "
                            "under its own folder)")
        if not path.is_file() and not path.exists():
            raise UserError(f"{listing}: line {number}: {line}: no such image file")
        _check_image_file(path, f"{listing}: line {number}: {line}")
        if not path.name.lower().endswith(SUFFIXES):
            raise UserError(f"{listing}: line {number}: {line}: not a .jpg, .jpeg or .png file")
        out.append(ImageFile(path.stem, path, line))
    return out


def _check_image_file(path: Path, shown: str) -> None:
    """A regular file with a UTF-8 name: a FIFO or a device would block or never end a read, a link
    leads elsewhere, and the name is written to the features file."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{ascii(str(path))}: the file name is not UTF-8 text; rename it") from None
    if path.is_symlink():
        raise UserError(f"{shown}: a symbolic link (images are read from the folder itself; copy the file in)")
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise UserError(f"{shown}: {kind}, not an image file")


def prepare(image, prep):
    """An RGB PIL image as the network's (3, S, S) float tensor, as `prep` declares."""
    import torch  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    method = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[prep.interpolation]
    if prep.crop:
        width, height = image.size
        short = round(prep.size / prep.crop_fraction)
        scale = short / min(width, height)
        image = image.resize((max(short, round(width * scale)), max(short, round(height * scale))), method)
        left, top = (image.size[0] - prep.size) // 2, (image.size[1] - prep.size) // 2
        image = image.crop((left, top, left + prep.size, top + prep.size))
    else:
        image = image.resize((prep.size, prep.size), method)
    pixels = torch.from_numpy(np.asarray(image, np.float32) / prep.scale).permute(2, 0, 1)
    mean, std = torch.tensor(prep.mean)[:, None, None], torch.tensor(prep.std)[:, None, None]
    return (pixels - mean) / std


class DecodedImages:
    """A map-style dataset for torch's DataLoader: item i is (i, input, (width, height), error),
    error '' when the image decoded (else input is zeros and the error says why)."""

    def __init__(self, files: list, prep):
        self.files, self.prep = files, prep

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        import torch  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415

        try:
            with Image.open(self.files[i].path) as opened:
                opened.load()  # a truncated file fails here, not later
                size = opened.size
                pixels = prepare(opened.convert("RGB"), self.prep)
            return i, pixels, torch.tensor(size), ""
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            blank = torch.zeros(3, self.prep.size, self.prep.size)
            return i, blank, torch.tensor((0, 0)), f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
