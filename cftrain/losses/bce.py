"""The paper's task loss: sigmoid binary cross-entropy on the logits, averaged over the classes."""

from __future__ import annotations

import torch.nn.functional as F

from cftrain.losses import Loss, register


@register
class BinaryCrossEntropy(Loss):
    name = "bce"
    serves = ("binary", "multiclass", "multilabel", "soft")

    def __call__(self, logits, targets):
        expanded = targets[:, None, :].expand_as(logits)
        return F.binary_cross_entropy_with_logits(logits, expanded, reduction="none").mean(dim=2)
