"""Softmax cross-entropy for stores with one class per row (`--loss multiclass-softmax`), instead of
the paper's per-class sigmoids."""

from __future__ import annotations

import torch.nn.functional as F

from cftrain.losses import Loss, register


@register
class MulticlassSoftmax(Loss):
    name = "multiclass-softmax"
    serves = ("multiclass",)

    def __call__(self, logits, targets):
        n = logits.shape[1]
        classes = targets.argmax(1).repeat_interleave(n)
        return F.cross_entropy(logits.reshape(-1, logits.shape[2]), classes, reduction="none").view(-1, n)
