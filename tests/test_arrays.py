"""The shared index helpers against plain Python."""

import numpy as np

from cfpairs.arrays import concat_ranges, index_of


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


def test_group_roots_match_a_brute_force_union_find():
    from cfpairs.arrays import group_roots

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        pairs = rng.integers(0, n, size=(int(rng.integers(0, 30)), 2))
        groups = [{i} for i in range(n)]  # brute force: merge sets until no pair joins two sets
        for a, b in pairs:
            ga = next(g for g in groups if a in g)
            gb = next(g for g in groups if b in g)
            if ga is not gb:
                groups.remove(gb)
                ga |= gb
        expected = np.array([min(next(g for g in groups if i in g)) for i in range(n)])
        assert np.array_equal(group_roots(n, pairs), expected)
