"""Training methods, one class each, behind one registry (DomainBed's idea).

A method says which rows it trains on (`training_rows`), what it adds to the task loss
(`extra_loss`), and how the paper's tables name it. The training loop, the command line,
the presets and `cftrain table` read this registry and never test a method's name.
Adding a method = one class here, registered with `@register`, in the table's row order.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from cfpairs.errors import UserError
from cftrain import distributed
from cftrain.gs import gs_loss

METHODS: dict[str, "Method"] = {}


def register(cls):
    METHODS[cls.name] = cls()
    return cls


def method(name: str) -> "Method":
    if name not in METHODS:
        raise UserError(f"unknown mode {name!r} (choose from {', '.join(METHODS)})")
    return METHODS[name]


class Method:
    name = ""
    row_name = ""               # the row of the paper's Table 3 (text, COCO)
    regions_row_name = None     # the row of the paper's Table 1 (VQA), when it differs
    trains = True               # False: predictions are drawn, no model is trained
    reads = ()                  # options only this method reads (a sweep varies them for it alone)
    cost = 1.0                  # expected training time relative to augmentation's (orders a table's runs)

    def table_row_name(self, input_kind: str) -> str:
        return (self.regions_row_name if input_kind == "regions" else None) or self.row_name

    def training_rows(self, train, seed: int):
        """The training split this method learns from (default: every row, pairs kept)."""
        return train

    def needs_input_gradient(self, config) -> bool:
        """Whether `extra_loss` differentiates the logits w.r.t. x and then again (double backward:
        x must require grad, and models avoid cuDNN's RNN, which cannot do it)."""
        return False

    def extra_loss(self, x, logits, batch: dict, config, kind: str, generator, space=None) -> tuple:
        """(term already weighted, stats) added to the task loss; (None, {}) for none. `space`: a
        `cftrain.gs_space.DataSpace` when x is data the model reads through linear maps."""
        return None, {}


@register
class Chance(Method):
    name, row_name = "chance", "Chance (uniform random)"
    trains = False
    cost = 0.0

    def predict(self, splits: dict, seed: int, kind: str) -> dict:
        """Random scores per split (a uniformly drawn class, or random scores for mAP)."""
        generator = torch.Generator().manual_seed(seed)
        return {name: torch.rand(data.targets.shape, generator=generator) - 0.5 for name, data in splits.items()}


@register
class Shuffled(Method):
    name, row_name = "shuffled", "Trained on shuffled labels"
    cost = 0.8  # its val metric stops improving early

    def training_rows(self, train, seed):
        perm = torch.as_tensor(np.random.default_rng(seed).permutation(len(train)))
        shuffled = copy.copy(train)
        shuffled.targets, shuffled.labels = train.targets[perm], train.labels[perm]
        return shuffled


@register
class Original(Method):
    name, row_name = "original", "Trained without edited data"
    cost = 0.5  # half the rows
    regions_row_name = "Baseline (BUTD)"

    def training_rows(self, train, seed):
        return train.rows(np.flatnonzero(~train.is_counterfactual.numpy()))


@register
class Augmented(Method):
    name, row_name = "augmented", "With edited data (augmentation)"
    regions_row_name = "+ CF data"


@register
class GradientSupervision(Method):
    """The task loss plus `gs_weight` x the GS term over each batch's pairs."""
    name, row_name = "gs", "With edited data + GS"
    regions_row_name = "+ CF data + GS"
    random_relations = False
    reads = ("gs_weight", "gs_detach_target")
    cost = 1.5  # the GS term's double backward

    def needs_input_gradient(self, config):
        return config.gs_weight > 0

    def extra_loss(self, x, logits, batch, config, kind, generator, space=None):
        if config.gs_weight <= 0:
            return None, {}
        members = logits.dim() == 3  # a fused ensemble: (B, N, C)
        context = distributed.current()  # under torchrun: normalise by the global batch's edges
        term, stats = gs_loss(x, logits, batch["targets"], batch["edges"], kind, random=self.random_relations,
                              generator=generator, members=members,
                              reduce_counts=context.sum_ if context else None,
                              constant_direction=x.grad_fn is None or config.gs_detach_target,
                              random_sign=config.random_sign,  # grad_fn None: raw input, data
                              space=space)
        n = logits.shape[1] if members else 1
        return config.gs_weight * term, {"gs": float(term.detach()) / n, "gs_rows": stats["rows"]}


@register
class GradientSupervisionRandom(GradientSupervision):
    """The paper's ablation: each row related to a random other row of its batch."""
    name, row_name = "gs-random", "With edited data + GS, random relations"
    regions_row_name = "+ CF data + GS, random relations"
    random_relations = True
    reads = ("gs_weight", "gs_detach_target", "random_sign")


TRAINED = tuple(name for name, m in METHODS.items() if m.trains)


__all__ = ["METHODS", "TRAINED", "Method", "method", "register"]
