"""Bottom-up region features in TSV: no header, one image per line,
`image_id, image_w, image_h, num_boxes, boxes, features`, the last two base64 float32."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from cfpairs.errors import UserError

FIELDS = ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features")


@dataclass
class TsvImage:
    image_id: int | str
    width: int
    height: int
    boxes: np.ndarray     # (R, 4) float32, pixels x1, y1, x2, y2
    features: np.ndarray  # (R, D) float32


def iter_tsv(path, wanted=None, sha256: list | None = None, on_bytes=None,
             key=int) -> Iterator[tuple[int | str, TsvImage | None]]:
    """(image_id, image) for each line in order; only ids in `wanted` (all when None) are decoded,
    the others come with None. `key=str` keeps the first field as text (edited images' stems).

    The file is read once; its sha256 is appended to `sha256` at the end.
    """
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            digest.update(line)
            if on_bytes:
                on_bytes(len(line))
            if not line.strip():
                continue
            fields = line.rstrip(b"\r\n").split(b"\t")
            where = f"{path}:{line_no}"
            if len(fields) != len(FIELDS):
                raise UserError(f"{where}: expected {len(FIELDS)} tab-separated fields ({', '.join(FIELDS)}), "
                                f"found {len(fields)}")
            image_id = _int(where, "image_id", fields[0]) if key is int else fields[0].decode()
            yield image_id, (_decode(where, image_id, fields) if wanted is None or image_id in wanted else None)
    if sha256 is not None:
        sha256.append(digest.hexdigest())


def _int(where: str, name: str, raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"{where}: {name} {raw[:20]!r} is not an integer") from None


def _floats(where: str, name: str, raw: bytes) -> np.ndarray:
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UserError(f"{where}: field {name!r} is not valid base64 ({exc})") from None
    if len(data) % 4:
        raise UserError(f"{where}: field {name!r} holds {len(data)} bytes, not a whole number of float32")
    return np.frombuffer(data, dtype="<f4")


def _decode(where: str, image_id: int, fields: list) -> TsvImage:
    width, height, count = (_int(where, n, f) for n, f in zip(FIELDS[1:4], fields[1:4]))
    if count <= 0:
        raise UserError(f"{where}: num_boxes is {count}")
    boxes, features = _floats(where, "boxes", fields[4]), _floats(where, "features", fields[5])
    if boxes.size != count * 4 or features.size % count:
        raise UserError(f"{where}: {count} boxes need {count * 4} box values and a multiple of {count} feature "
                        f"values; found {boxes.size} and {features.size}")
    return TsvImage(image_id, width, height, boxes.reshape(count, 4).astype(np.float32),
                    features.reshape(count, -1).astype(np.float32))
