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
