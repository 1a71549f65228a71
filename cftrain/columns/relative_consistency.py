"""Relative consistency (Johnson & Marasović, BlackboxNLP 2023, "How much consistency is your
accuracy worth?"): consistency depends on accuracy, so compare a model with every model of the same
accuracy. Counted per pair as our consistency is: over a split's P pairs (2P sides), the model gets
k sides right and c pairs right on both sides. Among all ways to place k right answers on the 2P
sides (each equally likely), the number with exactly c' pairs right on both sides is

    N(c') = C(P, c') * C(P - c', k - 2c') * 2^(k - 2c')

(choose the c' whole pairs, then k - 2c' other pairs with one right side each, and which side).
Relative consistency is the share of those placements whose consistency does not surpass the
model's: sum over c' <= c of N(c') / C(2P, k), in %. 100% is the most consistent a model of this
accuracy can be; a model right on one side of every pair at random sits near 50%.
"""

from __future__ import annotations

import math

import numpy as np

from cftrain.columns import Column, register
from cftrain.metrics import keep_mask


def log_placements(pairs: int, right: int, both: int) -> float:
    """log N(both): placements of `right` right sides on `pairs` pairs with `both` pairs right twice."""
    single = right - 2 * both
    if both < 0 or single < 0 or both + single > pairs:
        return -math.inf
    return (math.lgamma(pairs + 1) - math.lgamma(both + 1) - math.lgamma(pairs - both + 1)
            + math.lgamma(pairs - both + 1) - math.lgamma(single + 1) - math.lgamma(pairs - both - single + 1)
            + single * math.log(2))


def relative_consistency(pairs: int, right: int, both: int) -> float:
    """P(an equally accurate placement has at most `both` pairs right twice), in %."""
    logs = np.array([log_placements(pairs, right, c) for c in range(0, right // 2 + 1)])
    top = logs.max()
    weights = np.exp(logs - top)
    return 100.0 * float(weights[:both + 1].sum() / weights.sum())


@register
class RelativeConsistency(Column):
    name, header = "relative-consistency", "rel. consistency"
    label_kinds = ("binary", "multiclass", "multilabel")
    better = "higher"
    what = ("relative consistency (Johnson & Marasović 2023): the share of equally accurate predictions on the "
            "pairs' sides whose consistency does not surpass the model's, %")
    order = 5

    @classmethod
    def compute(cls, scores, labels):
        pairs = np.asarray(scores.pairs, np.int64).reshape(-1, 2)[~keep_mask(scores)]  # flip pairs, as consistency
        if not len(pairs):
            return None
        sides = labels.pair_sides_right(scores.logits(), scores.targets, scores.labels, pairs)
        sides = sides[~np.isnan(sides).any(1)]
        if not len(sides):
            return {"value": None, "n": 0}
        return {"value": relative_consistency(len(sides), int(sides.sum()), int(sides.min(1).sum())),
                "n": len(sides)}
