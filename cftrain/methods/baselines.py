"""The paper's baselines: chance, shuffled labels, originals only, augmentation."""

from __future__ import annotations

import copy

import numpy as np
import torch

from cftrain.methods import Method, register


@register
class Chance(Method):
    """Uniform random predictions (a table runs it first)."""
    name, row_name = "chance", "Chance (uniform random)"
    trains = False
    cost, order = 0.0, 0

    @classmethod
    def predict(cls, splits: dict, seed: int) -> dict:
        """Random scores per split (a uniformly drawn class, or random scores for mAP)."""
        generator = torch.Generator().manual_seed(seed)
        return {name: torch.rand(data.targets.shape, generator=generator) - 0.5 for name, data in splits.items()}


@register
class Shuffled(Method):
    """The training labels permuted (what a model learns without the labels' meaning)."""
    name, row_name = "shuffled", "Trained on shuffled labels"
    cost, order = 0.8, 1  # its val metric stops improving early

    @classmethod
    def training_rows(cls, train, seed):
        perm = torch.as_tensor(np.random.default_rng(seed).permutation(len(train)))
        shuffled = copy.copy(train)
        shuffled.targets, shuffled.labels = train.targets[perm], train.labels[perm]
        return shuffled


@register
class Original(Method):
    """The originals only."""
    name, row_name = "original", "Trained without edited data"
    regions_row_name = "Baseline (BUTD)"
    in_curves = True
    cost, order = 0.5, 2  # half the rows

    @classmethod
    def training_rows(cls, train, seed):
        return train.rows(np.flatnonzero(~train.is_counterfactual.numpy()))


@register
class Augmented(Method):
    """Originals and counterfactuals as plain examples (pairs only keep batches whole)."""
    name, row_name = "augmented", "With edited data (augmentation)"
    regions_row_name = "+ CF data"
    in_curves = True
    order = 3
