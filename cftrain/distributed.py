"""Data-parallel training under `torchrun` (torch.distributed: gloo on CPU, nccl on CUDA).

Every rank plans the same global batches (same seed) and takes a disjoint share of each
batch's whole pair groups (groups[rank::world]: pairs are never split across ranks); a method whose
terms relate rows of different groups (`couples_rows`: random partners, a contrastive batch) gets
the whole batch on every rank and sums its terms over the rows of its share. Every term is
normalised globally: methods report sums and counts, and the run divides each sum by its count
over all ranks (one all-reduce, `cftrain.step.normalise`). After `backward()` the gradients
are summed across ranks with an explicit all-reduce, so every rank takes the step one process
would take on the whole global batch (tests/test_distributed.py: every trained method).

Why not DistributedDataParallel: its gradient hooks do not support the GS term's
`autograd.grad(create_graph=True)` (double backward through the reducer), and one flat all-reduce
after backward costs the same for these models.

Known differences from one process: batch norm (nli-bow) uses each rank's share for its batch
statistics, and dropout draws its masks from each rank's own generator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_gradients(self, params) -> None:
        """Sum every gradient across ranks in one flat all-reduce (missing gradients count as 0)."""
        params = [p for p in params if p.requires_grad]
        grads = [p.grad.to_dense() if p.grad is not None and p.grad.is_sparse else
                 (p.grad if p.grad is not None else torch.zeros_like(p)) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.sum_(flat)
        offset = 0
        for p, g in zip(params, grads):
            p.grad = flat[offset:offset + g.numel()].view_as(p).clone()
            offset += g.numel()


_current: dict = {"context": None}


def current() -> Context | None:
    return _current["context"]


def start(device: torch.device) -> Context | None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    _current["context"] = Context(dist.get_rank(), dist.get_world_size())
    return _current["context"]


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
    _current["context"] = None
