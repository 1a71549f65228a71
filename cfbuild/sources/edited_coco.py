"""Agarwal et al.'s edited COCO images: the file names carry the pairing.

`<split>/COCO_<split>_<image_id:012d>_<target:012d>.jpg`: target = the removed category id
(IV) or the removed annotation id (CV). The images are never decoded."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError

NAME = re.compile(r"^COCO_(?P<split>[a-z]+\d{4})_(?P<image>\d{12})_(?P<target>\d{12})\.(jpg|jpeg|png)$", re.IGNORECASE)


@dataclass
class EditedImages:
    stems: list            # file names without the extension: the feature key of each edit
    image_ids: np.ndarray  # (E,) original COCO image id
    targets: np.ndarray    # (E,) removed category id (iv) or annotation id (cv)


def list_edited(folder, split: str) -> EditedImages:
    """Edited images of `split` in `folder/<split>/`, sorted by name; a name that does not parse is an error."""
    root = Path(folder) / split
    if not root.is_dir():
        raise UserError(f"{root}: folder of edited {split} images not found")
    names = sorted(e.name for e in os.scandir(root) if e.is_file() and not e.name.startswith("."))
    stems, images, targets = [], [], []
    for name in names:
        match = NAME.match(name)
        if not match or match["split"] != split:
            raise UserError(f"{root / name}: not an edited-image name COCO_{split}_<image_id:012d>_<target:012d>.jpg")
        stems.append(name.rsplit(".", 1)[0])
        images.append(int(match["image"]))
        targets.append(int(match["target"]))
    return EditedImages(stems, np.array(images, np.int64), np.array(targets, np.int64))
