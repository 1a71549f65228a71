"""Validation rules of the pair store, format version 3 (docs/STORE.md; versions 1 and 2 follow them too,
every pair a flip).

Kept apart from `cfpairs.store` only for length. Label rules live with each label kind
(`cfpairs.label_kinds`).
"""

from __future__ import annotations

import numpy as np

from cfpairs.errors import StoreError
from cfpairs.label_kinds import label_kind as get_label_kind
from cfpairs.schema import RELATIONS, RESERVED_GROUPS, SPLIT_NAME, TOKEN_FIELDS, required_fields


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
    if input_kind == "vector" and not np.isfinite(ex["x"]).all():
        row = int(np.flatnonzero(~np.isfinite(ex["x"]).all(1))[0])
        raise StoreError(f"{where}/x: row {row} (id {ex['id'][row]!s}) is not finite (NaN or infinity); inputs "
                         "must be numbers")
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
                   n_images: int | None = None, pairs_relation=None) -> None:
    """Raise StoreError naming the first broken invariant of one split. `pairs_relation` (P,): each
    pair's relation, flip or keep (None: every pair flips, as in formats 1 and 2)."""
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
    labels = get_label_kind(label_kind)
    labels.check(ex, n_classes, where)
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
        itself = np.flatnonzero(index[:, 0] == index[:, 1])
        if itself.size:
            raise StoreError(f"/{name}/pairs/index: pair {itself[0]} joins row {index[itself[0], 0]} with itself")
        relation = _relations(name, pairs_relation, len(index))
        differ = labels.differ(ex, index[:, 0], index[:, 1])
        same = np.flatnonzero(~differ & (relation == "flip"))
        if same.size:
            a, b = index[same[0]]
            raise StoreError(f"/{name}/pairs/index: pair {same[0]} joins rows {a} ({ex['id'][a]}) and "
                             f"{b} ({ex['id'][b]}) with the same label (a flip pair changes it; relation keep)")
        moved = np.flatnonzero(differ & (relation == "keep"))
        if moved.size:
            a, b = index[moved[0]]
            raise StoreError(f"/{name}/pairs/relation: pair {moved[0]} is a keep pair, but rows {a} ({ex['id'][a]}) "
                             f"and {b} ({ex['id'][b]}) have different labels")
    for sub, rows in subsets.items():
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
            raise StoreError(f"/{name}/subsets/{sub}: rows must be a 1-d list inside [0, {n})")


def _relations(name: str, relation, pairs: int) -> np.ndarray:
    """(P,) each pair's relation as text, checked: flip or keep, one per pair."""
    if relation is None:
        return np.full(pairs, "flip", dtype=object)
    values = np.asarray([v.decode() if isinstance(v, bytes) else v for v in np.asarray(relation, dtype=object)],
                        dtype=object)
    if len(values) != pairs:
        raise StoreError(f"/{name}/pairs/relation: {len(values)} relations for {pairs} pairs")
    bad = [i for i, v in enumerate(values) if v not in RELATIONS]
    if bad:
        raise StoreError(f"/{name}/pairs/relation: pair {bad[0]} has relation {str(values[bad[0]])[:20]!r}, "
                         f"expected one of {', '.join(RELATIONS)}")
    return values
