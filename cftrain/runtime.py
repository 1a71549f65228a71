"""What a method is built with for one run (`Run`) and the form of its loss terms (`Term`), which
`cftrain.step.normalise` makes one loss: with the loop (`cftrain.train.fit`), the only code that
knows about processes.

A method reports each term as sums and counts (per ensemble member: the sum of a per-row, per-edge
or per-anchor value over the rows this process owns, and how many there were). The run divides
each sum by its count over every process (one all-reduce for all terms under `torchrun`), so a
term is normalised globally by construction: two processes take exactly the step one process
takes on the whole batch, whatever the method computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cftrain import optim


@dataclass
class Term:
    """One loss term: `sums` and `counts` are (N,) per ensemble member, over this process's rows;
    the loss adds weight x sum / count (the count over every process) of each member that has one."""
    name: str
    sums: torch.Tensor
    counts: torch.Tensor
    weight: float = 1.0


@dataclass(frozen=True)
class At:
    """Where training is: the epoch (from 1) and the step (from 1, counted over the whole run)."""
    epoch: int
    step: int


@dataclass
class Run:
    """One run's config, ensemble, loss and random generator, and the loop's services: an
    optimizer over parameters (the run's --optimizer), the global combination of terms and the
    gradient sum across processes. `distributed`: the loop's `cftrain.distributed.Context` or None."""
    config: object
    ensemble: object
    loss: object                 # cftrain.labels.Labels: the task loss, metric, GS class choice
    device: torch.device
    generator: torch.Generator
    distributed: object = None
    make_optimizer: object = None  # params -> optimizer; default: cftrain.optim.make_optimizer
    history: dict = field(default_factory=dict)

    @property
    def members(self) -> int:
        return self.ensemble.n

    def optimizer(self, params) -> torch.optim.Optimizer:
        return (self.make_optimizer or (lambda p: optim.make_optimizer(self.config, p)))(params)

    def member_parts(self) -> list:
        """[(parameter, k, dim)]: which parameters (or blocks of them) are each member's
        (`cftrain.ensemble.Ensemble.member_parts`; `member_norms` and `scale_members` read it)."""
        return self.ensemble.member_parts()

    def reduce_gradients(self, params) -> None:
        """Sum the gradients across processes (nothing to do in one process)."""
        if self.distributed is not None:
            self.distributed.sum_gradients(params)


def owned(batch: dict) -> torch.Tensor | None:
    """(B,) True for the rows this process owns (its share of a batch every process holds whole:
    methods whose terms relate rows of different pair groups); None when it owns every row."""
    return batch.get("owned")
