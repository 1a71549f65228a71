"""Training methods, one class each, behind one registry (DomainBed's idea).

A method says which rows it trains on (`training_rows`), declares the options only it reads
(`options`, `cftrain.options.Option`s: default, check, sweep range), and owns its training step:
`step(ensemble, optimizer, batch, ctx)` is today's default step (the task loss of the label kind,
plus whatever `loss(...)` adds), so a GS variant overrides the small `loss` hook and a method that
needs its own state or optimizer overrides `step`. The loop, the command line, sweeps and tables
read this registry and never test a method's name. Every module of this package is imported with
it, so a new method is one new file (`docs/EXTENDING.md`); `order` places its row in tables.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

import torch

from cfpairs.errors import UserError

METHODS: dict[str, "Method"] = {}


def register(cls):
    METHODS[cls.name] = cls()
    ordered = sorted(METHODS.items(), key=lambda item: item[1].order)
    METHODS.clear()
    METHODS.update(ordered)
    return cls


def method(name: str) -> "Method":
    if name not in METHODS:
        raise UserError(f"unknown mode {name!r} (choose from {', '.join(METHODS)})")
    return METHODS[name]


@dataclass
class StepContext:
    """What a step needs beyond the batch: the run's config, its labels (loss, metric, the class GS
    supervises: `cftrain.labels`), the ensemble's size, the device, the run's random generator and
    the data-parallel context (`cftrain.distributed`, None in one process)."""
    config: object
    labels: object
    members: int
    device: torch.device
    generator: torch.Generator
    distributed: object = None


class Method:
    name = ""
    row_name = ""               # the row of the paper's Table 3 (text, COCO)
    regions_row_name = None     # the row of the paper's Table 1 (VQA), when it differs
    trains = True               # False: predictions are drawn, no model is trained
    options: tuple = ()         # the run options only this method reads (cftrain.options.Option)
    cost = 1.0                  # expected training time relative to augmentation's (orders a table's runs)
    needs_pairs = False         # True: learns from the pairs (a train split without any is refused)
    order = 50.0                # the row's place in tables (built-in rows: 0-10)

    def table_row_name(self, input_kind: str) -> str:
        return (self.regions_row_name if input_kind == "regions" else None) or self.row_name

    def check(self, config, model_class) -> None:
        """Refuse, before any work, a config this method cannot train (a UserError naming why)."""

    def check_pairs(self, pairs: int, where: str) -> None:
        """Refuse, before any work, a train split with no pairs when this method learns from pairs."""
        if self.needs_pairs and not pairs:
            raise UserError(f"--mode {self.name}: {where} has no pairs, and {self.name} learns from pairs (it would "
                            "train as plain augmentation); use --mode augmented, or a store with pairs")

    def check_labels(self, config, labels) -> None:
        """Refuse, before any work, a config this method cannot train with the store's labels
        (`cftrain.labels.Labels`: the loss the store's label kind trains with)."""

    def training_rows(self, train, seed: int):
        """The training split this method learns from (default: every row, pairs kept)."""
        return train

    def needs_input_gradient(self, config) -> bool:
        """Whether `loss` differentiates the logits w.r.t. x and then again (double backward: x must
        require grad, and models avoid layers that cannot, e.g. cuDNN's RNN)."""
        return False

    def loss(self, x, logits, batch: dict, ctx: StepContext, space=None) -> tuple:
        """(term already weighted, stats) added to the task loss; (None, {}) for none. x (B, N, ...)
        and logits (B, N, C) have the ensemble's member dimension; `space`: a
        `cftrain.gs_space.DataSpace` when x is data the model reads through linear maps."""
        return None, {}

    def step(self, ensemble, optimizer, batch: dict, ctx: StepContext) -> dict:
        """One optimisation step on one batch of whole pair groups (already on the device):
        {"task_loss": members' mean, plus the `loss` hook's stats}."""
        ensemble.train()
        if "targets" not in batch:  # torchrun: this process has no group in this global batch
            return _empty_step(ensemble, optimizer, ctx)
        x, logits, space = forward(ensemble, batch, self.needs_input_gradient(ctx.config))
        per_member = ctx.labels.loss(logits, batch["targets"])
        task_loss = per_member.sum() * batch.get("share", 1.0)  # torchrun: this process's share of the batch
        extra, stats = self.loss(x, logits, batch, ctx, space)
        loss = task_loss if extra is None else task_loss + extra
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if ctx.distributed is not None:
            ctx.distributed.sum_gradients(ensemble.parameters())
        optimizer.step()
        return {"task_loss": float(per_member.detach().mean()), **stats}


def forward(ensemble, batch: dict, double: bool) -> tuple:
    """(x, logits, space): the ensemble's forward; with `double` (the input gradient will be
    differentiated again) x requires grad, or the model's data space stands in for it."""
    ensemble.set_double_backward(double)
    x = ensemble.encode(batch)
    if double and not x.requires_grad:
        found = ensemble.data_head(x, batch)  # x is data read through linear maps: GS in their outputs
        if found is not None:
            logits, space = found
            data = batch.get("x")
            if data is not None and space.raw.data_ptr() == data.data_ptr() and space.raw.shape == data.shape:
                space.known = batch.get("edge_distances")  # |x_j - x_i| of the batch's edges, from the loader
            return x, logits, space
        x = x.detach().requires_grad_(True)
    return x, ensemble.head(x, batch), None


def _empty_step(ensemble, optimizer, ctx) -> dict:
    """Take part in the gradient sum with zeros, then step like every other process."""
    optimizer.zero_grad(set_to_none=True)
    ctx.distributed.sum_gradients(ensemble.parameters())
    optimizer.step()
    return {"task_loss": None}


def _discover() -> None:
    """Import every method module of this package (each registers its methods)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")


_discover()
TRAINED = tuple(name for name, m in METHODS.items() if m.trains)

__all__ = ["METHODS", "TRAINED", "Method", "StepContext", "forward", "method", "register"]
