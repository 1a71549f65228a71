"""Validation rules of the pair store, format version 1 (DESIGN.md §1): part of `cfbuild.store`.

Kept apart only for length; `cfbuild.store` re-exports `validate_split` and `labels_differ`.
"""

from __future__ import annotations

import numpy as np

from cfbuild.errors import StoreError
from cfbuild.store_schema import (EXTRA_INPUT_FIELDS, LABEL_FIELDS, RESERVED_GROUPS, SPLIT_NAME,
                                  TOKEN_FIELDS, required_fields)


def labels_differ(examples: dict, label_kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bool per (a[i], b[i]) row pair: do the two rows carry different labels?"""
    if label_kind in ("binary", "multiclass"):
        return examples["label"][a] != examples["label"][b]
    if label_kind == "multilabel":
        return np.any(examples["label"][a] != examples["label"][b], axis=1)
    # soft: compare {answer: score} maps, ignoring padding and zero scores
    index, score = examples["label_index"], examples["label_score"]

    def canonical(rows):
        idx = np.where(score[rows] > 0, index[rows], -1)
        order = np.argsort(idx, axis=1, kind="stable")
        sc = np.where(idx >= 0, score[rows], 0)
        return np.take_along_axis(idx, order, 1), np.take_along_axis(sc, order, 1)

    ia, sa = canonical(a)
    ib, sb = canonical(b)
    return np.any(ia != ib, axis=1) | np.any(sa != sb, axis=1)


def _check_labels(ex: dict, label_kind: str, n_classes: int, where: str) -> None:
    if label_kind in ("binary", "multiclass"):
        label = ex["label"]
        if label.ndim != 1 or label.dtype.kind not in "iu":
            raise StoreError(f"{where}/label: expected (N,) integers, got {label.dtype} {label.shape}")
        high = 2 if label_kind == "binary" else n_classes
        if label.size and (label.min() < 0 or label.max() >= high):
            raise StoreError(f"{where}/label: values outside [0, {high})")
    elif label_kind == "multilabel":
        label = ex["label"]
        if label.ndim != 2 or label.shape[1] != n_classes:
            raise StoreError(f"{where}/label: expected (N, {n_classes}), got {label.shape}")
        if not np.isin(label, (0.0, 1.0)).all():
            raise StoreError(f"{where}/label: multilabel values must be 0 or 1")
    else:
        idx, score = ex["label_index"], ex["label_score"]
        if idx.ndim != 2 or idx.shape != score.shape:
            raise StoreError(f"{where}/label_index and label_score: shapes {idx.shape} and {score.shape} must agree (N, K)")
        if idx.size and (idx.min() < -1 or idx.max() >= n_classes):
            raise StoreError(f"{where}/label_index: values outside [-1, {n_classes})")
        if not (np.isfinite(score).all() and (score >= 0).all() and (score <= 1).all()):
            raise StoreError(f"{where}/label_score: scores must lie in [0, 1]")
        if np.any((idx < 0) & (score != 0)):
            raise StoreError(f"{where}/label_score: padding entries (index -1) must score 0")


def _check_inputs(ex: dict, input_kind: str, vocab_size: int | None, n_images: int | None, where: str) -> None:
    for prefix in TOKEN_FIELDS[input_kind]:
        tokens, length = ex[f"{prefix}tokens"], ex[f"{prefix}length"]
        if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
            raise StoreError(f"{where}/{prefix}tokens: expected (N, L) integers, got {tokens.dtype} {tokens.shape}")
        if vocab_size is None:
            raise StoreError(f"{where}: /vocab is required for input kind {input_kind!r}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
            raise StoreError(f"{where}/{prefix}tokens: token ids outside the vocabulary [0, {vocab_size})")
        if length.size and (length.min() < 0 or length.max() > tokens.shape[1]):
            raise StoreError(f"{where}/{prefix}length: lengths outside [0, {tokens.shape[1]}]")
    if input_kind == "vector" and (ex["x"].ndim != 2 or ex["x"].dtype != np.float32):
        raise StoreError(f"{where}/x: expected (N, D) float32, got {ex['x'].dtype} {ex['x'].shape}")
    if input_kind == "regions":
        if n_images is None:
            raise StoreError(f"{where}: /regions is required for input kind 'regions'")
        rows, mask = ex["image_row"], ex["region_mask"]
        if rows.size and (rows.min() < 0 or rows.max() >= n_images):
            raise StoreError(f"{where}/image_row: rows outside /regions [0, {n_images})")
        if mask.ndim != 2 or mask.dtype != np.bool_:
            raise StoreError(f"{where}/region_mask: expected (N, R) bool, got {mask.dtype} {mask.shape}")


def validate_split(name: str, ex: dict, pairs_index, pairs_kind, subsets: dict, *, input_kind: str,
                   label_kind: str, n_classes: int, vocab_size: int | None = None,
                   n_images: int | None = None) -> None:
    """Raise StoreError naming the first broken invariant of one split (DESIGN §1)."""
    where = f"/{name}/examples"
    if not SPLIT_NAME.match(name) or name in RESERVED_GROUPS:
        raise StoreError(f"split name {name!r} must match {SPLIT_NAME.pattern} and not be {RESERVED_GROUPS}")
    for field in required_fields(input_kind, label_kind):
        if field not in ex:
            raise StoreError(f"{where}: missing dataset {field!r} (required for {input_kind}/{label_kind})")
    n = len(ex["id"])
    for field, arr in ex.items():
        if arr.ndim == 0 or arr.shape[0] != n:
            raise StoreError(f"{where}/{field}: {arr.shape[0] if arr.ndim else 0} rows, but 'id' has {n}")
    if len(set(ex["id"].tolist())) != n:
        dup = next(i for i, c in zip(*np.unique(ex["id"].astype(str), return_counts=True)) if c > 1)
        raise StoreError(f"{where}/id: ids must be unique within a split; {dup!r} repeats")
    if ex["is_counterfactual"].dtype != np.bool_:
        raise StoreError(f"{where}/is_counterfactual: expected bool, got {ex['is_counterfactual'].dtype}")
    _check_labels(ex, label_kind, n_classes, where)
    _check_inputs(ex, input_kind, vocab_size, n_images, where)
    index = np.asarray(pairs_index)
    if index.ndim != 2 or index.shape[1] != 2 or (index.size and index.dtype.kind not in "iu"):
        raise StoreError(f"/{name}/pairs/index: expected (P, 2) integers, got {index.dtype} {index.shape}")
    if len(pairs_kind) != len(index):
        raise StoreError(f"/{name}/pairs/kind: {len(pairs_kind)} kinds for {len(index)} pairs")
    if index.size:
        bad = np.flatnonzero((index < 0).any(1) | (index >= n).any(1))
        if bad.size:
            raise StoreError(f"/{name}/pairs/index: pair {bad[0]} {index[bad[0]].tolist()} points outside [0, {n})")
        same = np.flatnonzero(~labels_differ(ex, label_kind, index[:, 0], index[:, 1]))
        if same.size:
            a, b = index[same[0]]
            raise StoreError(f"/{name}/pairs/index: pair {same[0]} joins rows {a} ({ex['id'][a]}) and "
                             f"{b} ({ex['id'][b]}) with the same label")
    for sub, rows in subsets.items():
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
            raise StoreError(f"/{name}/subsets/{sub}: rows must be a 1-d list inside [0, {n})")
