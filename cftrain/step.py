"""One training step, whole: what every method's `step` does on a batch unless it owns its step
(`cftrain.methods.Method`; SAM calls `member_losses` twice). Read `training_step` top to bottom:

    1. forward   the ensemble's N members at once: x (B, N, ...) and logits (B, N, C); when the
                 method differentiates the input gradient again (GS), x requires grad, or the
                 model's linear data space stands in for it (`forward`)
    2. terms     each member's task loss summed over the rows this process owns (`task_term`),
                 then the method's own terms (`Method.extra_terms`; GS: 1 - cos(g, t) over the
                 batch's pairs, `cftrain.gs`), each as per-member sums and counts
    3. normalise each sum over its count across every process, times its weight (`normalise`:
                 one all-reduce), so member k's loss reads member k's parameters only and two
                 processes take exactly the step one would take on the whole batch
    4. backward  the members' summed losses; gradients summed across processes (`backward`)
    5. update    the method's optimizer

The ensemble forms (fused, vmapped, members in turn: `cftrain.ensemble`) and the processes
(`cftrain.distributed`) stay behind `ensemble` and `run.distributed`; tests/test_step_reference.py
checks this step against a single model's step written out by hand, bit for bit.
"""

from __future__ import annotations

import torch

from cftrain.runtime import Term, owned


def training_step(method, batch: dict, at) -> dict:
    """One optimisation step of `method` (a built `Method`) on one batch of whole pair groups
    (already on the device); returns the history's stats: the members' mean task loss, each term."""
    method.ensemble.train()
    losses, stats = member_losses(method, batch, at)     # 1-3: forward, terms, normalise
    backward(method, losses)                             # 4
    method.optimizer.step()                              # 5
    return stats


def member_losses(method, batch: dict, at) -> tuple:
    """((N,) each member's loss, or None where this process holds no row of the batch; stats)."""
    terms = None
    if "targets" in batch:  # else (torchrun): this process holds no group of this batch, and joins with zeros
        x, logits, space = forward(method.ensemble, batch, method.needs_input_gradient(method.config))
        terms = [task_term(method.run.loss, logits, batch), *method.extra_terms(x, logits, batch, space, at)]
    return normalise(terms, ("task", *method.terms), method.run.members, method.run.distributed)


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


def task_term(loss, logits, batch: dict) -> Term:
    """The task loss as a term: each member's per-row losses summed over the rows this process owns."""
    rows = loss.loss(logits, batch["targets"])  # (B, N)
    mine = owned(batch)
    if mine is not None:
        rows = rows[mine]
    return Term("task", rows.sum(0), rows.new_full((rows.shape[1],), float(rows.shape[0])))


def normalise(terms: list | None, names: tuple, members: int, distributed=None) -> tuple:
    """((N,) each member's loss or None, stats) of the terms named `names` (the task loss first):
    weight x sum / count, the counts over every process. `terms` None: this process holds no row
    of the batch, and takes part with zeros (every process joins the same all-reduce)."""
    n = members
    if terms is None:
        sums, counts, weights = torch.zeros(len(names), n), torch.zeros(len(names), n), [0.0] * len(names)
    else:
        found = tuple(t.name for t in terms)
        if found != names:
            raise RuntimeError(f"the method reported terms {found}, it declares {names}")
        sums = torch.stack([t.sums.reshape(n) for t in terms])
        counts = torch.stack([t.counts.reshape(n).to(sums.dtype) for t in terms])
        weights = [t.weight for t in terms]
    totals = torch.cat([sums.detach().float().cpu(), counts.detach().float().cpu()])
    if distributed is not None:
        distributed.sum_(totals)
    global_sums, global_counts = totals[:len(names)], totals[len(names):]
    stats = _stats(names, global_sums / global_counts.clamp(min=1), global_counts)
    if terms is None:
        return None, stats
    scale = torch.where(global_counts > 0, 1.0 / global_counts.clamp(min=1), torch.zeros_like(global_counts))
    scale = scale.to(sums.device, sums.dtype) * torch.tensor(weights, dtype=sums.dtype, device=sums.device)[:, None]
    return (sums * scale).sum(0), stats


def _stats(names: tuple, per_member: torch.Tensor, counts: torch.Tensor) -> dict:
    """The history's values: each term's mean over the members that have rows, and its rows."""
    stats = {}
    for k, name in enumerate(names):
        has = counts[k] > 0
        key = "task_loss" if k == 0 else name
        stats[key] = float(per_member[k][has].mean()) if has.any() else (None if k == 0 else 0.0)
        if k:
            stats[f"{name}_rows"] = int(counts[k].sum())
    return stats


def backward(method, losses) -> None:
    """Gradients of the members' summed losses (each member gets exactly its own), summed across
    processes: every process then holds the gradient one process would have."""
    method.optimizer.zero_grad(set_to_none=True)
    if losses is not None:
        losses.sum().backward()
    method.run.reduce_gradients(method.ensemble.parameters())
