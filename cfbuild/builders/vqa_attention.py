"""Human-attention scores aligned with a split's questions and its images' boxes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfbuild.builders.regions import RegionTable
from cfpairs.errors import UserError
from cfpairs.progress import Progress
from cfbuild.sources.attention import hat_maps, hat_scores, load_hints
from cfpairs.store import describe_source


@dataclass
class Attention:
    scores: np.ndarray  # (N, R) per-box scores; NaN for padding boxes and questions without attention
    has: np.ndarray     # (N,) bool: the question has attention scores


class AttentionSource:
    """Either `--hints` (scores given) or `--hat-dir` (scores computed from VQA-HAT maps)."""

    def __init__(self, hints=None, hat_dir=None):
        if (hints is None) == (hat_dir is None):
            raise UserError("give exactly one of --hints and --hat-dir")
        self.path = Path(hints or hat_dir)
        self.hints = load_hints(hints) if hints else None
        self.maps = hat_maps(hat_dir) if hat_dir else None
        self.used: set[int] = set()
        self._hat_digest = hashlib.sha256()

    @property
    def question_ids(self) -> set:
        return set(self.hints if self.hints is not None else self.maps)

    def source_entry(self) -> dict:
        if self.hints is not None:
            return describe_source(self.path, "vqa_hat")
        return {"file": self.path.name, "size": len(self.used), "sha256": self._hat_digest.hexdigest(),
                "manifest_id": "vqa_hat", "note": "HAT maps used: sha256 over (file name, bytes) in question order"}

    def for_split(self, qids: np.ndarray, image_row: np.ndarray, regions: RegionTable, real: np.ndarray) -> Attention:
        """Scores of each question's boxes; `real` (N, R) marks the boxes that are not padding."""
        n, width = len(qids), regions.boxes.shape[1]
        scores = np.full((n, width), np.nan, np.float32)
        known = self.question_ids
        has = np.fromiter((int(q) in known for q in qids), bool, n)
        rows = np.flatnonzero(has)
        bar = Progress(len(rows), "attention", unit="q")
        for i in rows:
            bar.update()
            qid, img = int(qids[i]), image_row[i]
            boxes = int(regions.num_boxes[img])
            values = self.hints[qid] if self.hints is not None else self._hat(qid, img, regions)
            if len(values) != boxes:
                raise UserError(f"{self.path}: question {qid}: {len(values)} scores for the {boxes} boxes of "
                                f"image {regions.image_id[img]}")
            scores[i, :boxes] = values
            self.used.add(qid)
        bar.close()
        bad = np.flatnonzero((has[:, None] & real & ~((scores >= 0) & (scores <= 1))).any(axis=1))
        if bad.size:
            values = scores[bad[0]][real[bad[0]]]
            raise UserError(f"{self.path}: question {int(qids[bad[0]])}: scores must lie in [0, 1], found "
                            f"{values[~((values >= 0) & (values <= 1))][0]}")
        return Attention(scores, has)

    def _hat(self, qid: int, img: int, regions: RegionTable) -> np.ndarray:
        if regions.sizes is None:
            raise UserError("--hat-dir needs each image's size: use TSV features, or HDF5 with spatial_features")
        files = self.maps[qid]
        for path in files:
            self._hat_digest.update(path.name.encode() + b"\0" + path.read_bytes())
        boxes = regions.boxes[img, :regions.num_boxes[img]]
        return hat_scores(files, tuple(regions.sizes[img]), boxes)

