"""Relative consistency by hand and by brute force over every placement of right answers."""

import itertools
import math

import numpy as np
import pytest
import torch

from cftrain.columns import COLUMNS
from cftrain.columns.relative_consistency import relative_consistency
from cftrain.labels import training_labels
from cftrain.scores import kept_scores
from tests.test_columns import split_of


def test_two_pairs_by_hand():
    # 2 right sides on 4: 6 placements; 2 put both in one pair (c' = 1), 4 spread them (c' = 0)
    assert relative_consistency(2, 2, 1) == pytest.approx(100.0)
    assert relative_consistency(2, 2, 0) == pytest.approx(100 * 4 / 6)


@pytest.mark.parametrize("pairs", [1, 2, 3, 5])
def test_every_case_against_every_placement(pairs):
    for right in range(2 * pairs + 1):
        counts = {}
        for chosen in itertools.combinations(range(2 * pairs), right):
            sides = np.zeros(2 * pairs, bool)
            sides[list(chosen)] = True
            both = int(sides.reshape(pairs, 2).all(1).sum())
            counts[both] = counts.get(both, 0) + 1
        assert sum(counts.values()) == math.comb(2 * pairs, right)
        for both in counts:
            expected = 100 * sum(n for c, n in counts.items() if c <= both) / sum(counts.values())
            assert relative_consistency(pairs, right, both) == pytest.approx(expected)


def test_large_splits_stay_finite():
    value = relative_consistency(5000, 9000, 4200)
    assert 0 <= value <= 100 and relative_consistency(5000, 9000, 4500) == pytest.approx(100.0)


def test_the_column_counts_pairs_as_consistency_does():
    data = split_of("binary", n=8)  # pairs (0, 4) (1, 5) (2, 6) (3, 7)
    data.labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    data.targets = data.labels[:, None].float()
    data.pair_relations = np.array(["flip"] * 4, dtype=object)
    predicted = torch.tensor([1, 1, 0, 0, 0, 1, 1, 0])  # sides right: (1, 1), (1, 0), (0, 0), (0, 1)
    logits = (predicted.float() * 2 - 1)[None, :, None]
    cell = COLUMNS["relative-consistency"].compute(kept_scores(logits, data, "binary"), training_labels("binary"))
    assert cell == {"value": pytest.approx(relative_consistency(4, 4, 1)), "n": 4}
    # 4 right of 8: c' = 0 (16 placements), 1 (48), 2 (6) of C(8, 4) = 70
    assert relative_consistency(4, 4, 1) == pytest.approx(100 * 64 / 70)
    # 6 right of 8 forces 2 whole pairs: c' = 2 (24 placements) or 3 (4)
    assert relative_consistency(4, 6, 2) == pytest.approx(100 * 24 / 28)
