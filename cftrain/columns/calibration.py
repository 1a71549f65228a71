"""Expected calibration error (Guo et al., ICML 2017): how far the ensemble's confidence in its
predicted class is from how often that class is right, over 15 equal-width confidence bins."""

from __future__ import annotations

import torch

from cftrain.columns import Column, register

BINS = 15


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, bins: int = BINS) -> float:
    """sum over bins b of |B_b| / n x |accuracy(B_b) - mean confidence(B_b)|, in percent; bin b holds
    the confidences in (b / bins, (b + 1) / bins] (the first also holds 0)."""
    which = (confidence * bins).ceil().long().clamp(1, bins) - 1
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += float(inside.sum()) * abs(float(correct[inside].float().mean() - confidence[inside].mean()))
    return 100.0 * total / len(confidence)


@register
class CalibrationError(Column):
    name, header = "ece", "ECE"
    label_kinds = ("binary", "multiclass")
    better = "lower"
    what = ("expected calibration error: the gap between the ensemble's confidence in its prediction (softmax or "
            "sigmoid of the mean logits) and its accuracy, over 15 equal-width bins, %")
    order = 10

    @classmethod
    def compute(cls, scores, labels):
        logits, truth = scores.logits(), scores.labels
        known = truth >= 0
        if not known.any():
            return {"value": None, "n": 0}
        if logits.shape[1] == 1:
            p = torch.sigmoid(logits[:, 0])
            confidence, predicted = torch.maximum(p, 1 - p), (p > 0.5).long()
        else:
            confidence, predicted = torch.softmax(logits, 1).max(1)
        return {"value": expected_calibration_error(confidence[known], (predicted == truth)[known]),
                "n": int(known.sum())}
