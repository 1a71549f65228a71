"""Vectorised index helpers shared by the builders and the trainer."""

from __future__ import annotations

import numpy as np


def index_of(keys: np.ndarray, queries) -> np.ndarray:
    """Position of each query in `keys` (any order, unique), -1 where absent."""
    keys = np.asarray(keys)
    queries = np.asarray(queries, dtype=keys.dtype if keys.size else np.int64)
    if not keys.size:
        return np.full(len(queries), -1, np.int64)
    order = np.argsort(keys, kind="stable")
    pos = np.minimum(np.searchsorted(keys[order], queries), len(keys) - 1)
    return np.where(keys[order[pos]] == queries, order[pos], -1)


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ranges [start, start + length) without a Python loop."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(ends[-1] if len(ends) else 0)


def group_roots(n: int, pairs: np.ndarray) -> np.ndarray:
    """(n,) the smallest row of each row's connected group under `pairs` (a row alone: itself).

    Label propagation with numpy: each pass pulls every pair's two labels down to their minimum
    and follows labels to their own label; star-shaped groups (an original and its edits) settle
    in two passes."""
    roots = np.arange(n)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if not len(pairs):
        return roots
    while True:
        low = np.minimum(roots[pairs[:, 0]], roots[pairs[:, 1]])
        before = roots.copy()
        np.minimum.at(roots, pairs[:, 0], low)
        np.minimum.at(roots, pairs[:, 1], low)
        roots = roots[roots]  # jump to the label's own label
        if np.array_equal(roots, before):
            return roots
