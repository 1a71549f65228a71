"""A COCO-like fixture with real pixels: shapes drawn on textured backgrounds (a red disc is a
person, a blue block a car, a green triangle a dog), instances JSON with their boxes, and
Agarwal-style "inpainted" copies where every instance of one category is painted out (the
background drawn again over it). The annotation and edit structure is tests/coco_fixtures.py's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.coco_fixtures import CATEGORIES, EDITS_IV, TRAIN, VAL, stem

WIDTH, HEIGHT = 192, 144
COLOURS = {1: (220, 30, 30), 3: (30, 60, 220), 18: (30, 190, 60)}


def background(image_id: int) -> np.ndarray:
    """A smooth texture that differs per image (what inpainting restores)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    phase = image_id * 0.7
    grey = 120 + 40 * np.sin(x / 17 + phase) * np.cos(y / 23 - phase)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def box_of(image_id: int, k: int) -> list:
    """The k-th object's box [x, y, w, h]: objects sit side by side, never overlapping."""
    return [8 + 62 * k, 30 + 8 * (image_id % 3), 52, 52]


def draw(image_id: int, objects: list, removed: int | None = None):
    """The image with its objects (annotation id, category id), less those of category `removed`."""
    from PIL import Image, ImageDraw
    image = Image.fromarray(background(image_id))
    pen = ImageDraw.Draw(image)
    for k, (_, category) in enumerate(objects):
        if category == removed:
            continue
        x, y, w, h = box_of(image_id, k)
        colour = COLOURS[category]
        if category == 1:
            pen.ellipse((x, y, x + w, y + h), fill=colour)
        elif category == 3:
            pen.rectangle((x, y + h // 4, x + w, y + h - h // 4), fill=colour)
        else:
            pen.polygon([(x, y + h), (x + w // 2, y), (x + w, y + h)], fill=colour)
    return image


def instances(images: dict) -> dict:
    anns = []
    for image_id, objects in images.items():
        for k, (ann, category) in enumerate(objects):
            x, y, w, h = box_of(image_id, k)
            anns.append({"id": ann, "image_id": image_id, "category_id": category, "bbox": [x, y, w, h],
                         "area": float(w * h), "iscrowd": 0, "segmentation": [[x, y, x + w, y, x + w, y + h]]})
    return {"info": {}, "licenses": [], "categories": CATEGORIES, "annotations": anns,
            "images": [{"id": i, "file_name": f"COCO_x_{i:012d}.jpg", "width": WIDTH, "height": HEIGHT}
                       for i in images]}


def cfbuild(*args):
    from cli.cfbuild import main
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """The fixture's folders, written once per test module."""
    return write_image_coco(tmp_path_factory.mktemp("image-coco"))


def write_image_coco(root: Path, edits: dict = EDITS_IV) -> Path:
    """root/instances/instances_<split>.json, root/images/<split>/COCO_<split>_<id>.jpg (originals)
    and root/edited/<split>/COCO_<split>_<id>_<category>.jpg (one category painted out)."""
    (root / "instances").mkdir(parents=True, exist_ok=True)
    for split, images in (("train2014", TRAIN), ("val2014", VAL)):
        (root / "instances" / f"instances_{split}.json").write_text(json.dumps(instances(images)))
        for folder in ("images", "edited"):
            (root / folder / split).mkdir(parents=True, exist_ok=True)
        for image_id, objects in images.items():
            draw(image_id, objects).save(root / "images" / split / f"COCO_{split}_{image_id:012d}.jpg", quality=95)
        for image_id, category in edits.get(split, []):
            draw(image_id, images[image_id], removed=category).save(
                root / "edited" / split / f"{stem(split, image_id, category)}.jpg", quality=95)
    return root
