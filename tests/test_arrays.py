"""The shared index helpers against plain Python."""

import numpy as np

from cfbuild.arrays import concat_ranges, index_of


def test_index_of_matches_a_dict_lookup():
    rng = np.random.default_rng(0)
    keys = rng.permutation(50) * 3  # unsorted, unique
    queries = rng.integers(0, 160, 40)
    where = {int(k): i for i, k in enumerate(keys)}
    assert index_of(keys, queries).tolist() == [where.get(int(q), -1) for q in queries]
    assert index_of(np.zeros(0, np.int64), [1, 2]).tolist() == [-1, -1]


def test_concat_ranges_matches_a_loop():
    starts, lengths = np.array([5, 0, 9, 2]), np.array([3, 0, 2, 1])
    assert concat_ranges(starts, lengths).tolist() == [5, 6, 7, 9, 10, 2]
    assert concat_ranges(np.zeros(0, int), np.zeros(0, int)).tolist() == []
