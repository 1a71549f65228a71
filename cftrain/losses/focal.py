"""Focal loss (Lin et al., ICCV 2017): the sigmoid cross-entropy of each class scaled by
(1 - p_t)^gamma, p_t the probability given to the true side, so examples already right weigh less;
gamma 0 is `bce`. `--loss focal --focal-gamma 2`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cftrain.losses import Loss, register
from cftrain.options import Option

FOCAL_GAMMA = Option("focal_gamma", float, 2.0, "Focusing exponent of the focal loss (0: plain cross-entropy).",
                     low=0, high=20, sweep={"uniform": [0.5, 4.0]})


@register
class Focal(Loss):
    name = "focal"
    serves = ("binary", "multiclass", "multilabel")
    options = (FOCAL_GAMMA,)

    def __init__(self, focal_gamma: float = FOCAL_GAMMA.default):
        self.gamma = focal_gamma

    def __call__(self, logits, targets):
        expanded = targets[:, None, :].expand_as(logits)
        bce = F.binary_cross_entropy_with_logits(logits, expanded, reduction="none")
        p_true = torch.exp(-bce)  # sigmoid(z) for a positive, 1 - sigmoid(z) for a negative
        return ((1 - p_true) ** self.gamma * bce).mean(dim=2)
