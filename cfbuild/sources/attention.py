"""Human attention per box: given scores (`--hints`), or raw VQA-HAT maps (`--hat-dir`)."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError
from cfbuild.sources.safe_pickle import load_pickle

HAT_NAME = re.compile(r"^(\d+)_(\d+)\.png$", re.IGNORECASE)


def load_hints(path) -> dict[int, np.ndarray]:
    """{question_id: float32 scores, one per box} from a JSON file or a (restricted) pickle.

    float32 whatever the file holds, and thresholds are compared in float32 too: a score
    of 0.2 is then "not above 0.2" whether it came from JSON or from a float32 array."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not valid JSON ({exc})") from None
    else:
        raw = load_pickle(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping question_id -> scores, got {type(raw).__name__}")
    hints = {}
    for key, scores in raw.items():
        try:
            qid = int(key)
            hints[qid] = np.asarray(scores, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise UserError(f"{path}: question {key!r}: expected an integer id and a list of numbers") from None
    return hints


def box_scores(attention: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Per box: mean of the map inside / (mean inside + mean outside); 0 where both are 0.

    `attention` is (H, W), already at the image's size; boxes are pixels x1, y1, x2, y2,
    rounded to pixel edges and clipped to the image.
    """
    height, width = attention.shape
    integral = np.zeros((height + 1, width + 1))
    integral[1:, 1:] = attention.cumsum(0).cumsum(1)
    x1, x2 = (np.clip(np.rint(boxes[:, i]), 0, width).astype(int) for i in (0, 2))
    y1, y2 = (np.clip(np.rint(boxes[:, i]), 0, height).astype(int) for i in (1, 3))
    x2, y2 = np.maximum(x1, x2), np.maximum(y1, y2)
    inside = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
    area = (x2 - x1) * (y2 - y1)
    out_area = height * width - area
    mean_in = np.divide(inside, area, out=np.zeros(len(boxes)), where=area > 0)
    mean_out = np.divide(integral[-1, -1] - inside, out_area, out=np.zeros(len(boxes)), where=out_area > 0)
    total = mean_in + mean_out
    return np.divide(mean_in, total, out=np.zeros(len(boxes)), where=total > 0)


def hat_maps(hat_dir) -> dict[int, list[Path]]:
    """question_id -> its `<qid>_<k>.png` files (several annotators' maps are averaged)."""
    found = defaultdict(list)
    for entry in os.scandir(hat_dir):
        match = HAT_NAME.match(entry.name)
        if match and entry.is_file():
            found[int(match.group(1))].append(Path(entry.path))
    return {qid: sorted(paths) for qid, paths in found.items()}


def hat_scores(files: list[Path], size: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """Box scores of one question from its maps, each resized to the image's (width, height)."""
    from PIL import Image, UnidentifiedImageError

    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise UserError(f"{files[0]}: the image's size is unknown ({width} x {height}); HAT maps need it")
    total = np.zeros((height, width))
    for path in files:
        try:
            with Image.open(path) as img:
                total += np.asarray(img.convert("L").resize((width, height), Image.BILINEAR), dtype=np.float64)
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"{path}: not a readable image ({exc})") from None
    return box_scores(total / (255.0 * len(files)), boxes).astype(np.float32)
