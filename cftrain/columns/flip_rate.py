"""Flip rate on keep pairs (store format 3: an edit that should not change the prediction, e.g. an
identity term swapped by `cfbuild swap`): the share of keep pairs whose two sides get a different
predicted class from the ensemble (multilabel: a different set of classes). Lower is better; the
counterfactual-fairness literature reports it (Garg et al., 2019)."""

from __future__ import annotations

import numpy as np
import torch

from cftrain.columns import Column, register
from cftrain.metrics import keep_mask


def predicted_sets(scores) -> torch.Tensor:
    """(N, K) what the ensemble predicts per row: its class (K = 1), or multilabel's positive classes."""
    if scores.label_kind == "multilabel":
        return (scores.logits() > 0).long()
    return scores.predicted()[:, None].long()


@register
class FlipRate(Column):
    name, header = "flip-rate", "flip rate"
    label_kinds = ("binary", "multiclass", "multilabel", "soft")
    better = "lower"
    what = "keep pairs (edits that should not matter) whose two sides get different predictions, %"
    order = 6

    @classmethod
    def compute(cls, scores, labels):
        pairs = np.asarray(scores.pairs, np.int64).reshape(-1, 2)[keep_mask(scores)]
        if not len(pairs):
            return None  # no keep pair in this split: no cell
        predicted = predicted_sets(scores)
        index = torch.as_tensor(pairs)
        moved = (predicted[index[:, 0]] != predicted[index[:, 1]]).any(1)
        return {"value": 100.0 * float(moved.float().mean()), "n": len(pairs)}
