"""Each ensemble member's share of the parameters, for methods that treat members apart (SAM's
per-member gradient norm): `Ensemble.member_parts()` says which parameters, or which blocks of a
fused parameter, are member k's; these two read and scale tensors by those blocks."""

from __future__ import annotations

import torch


def member_norms(parts: list, n: int, tensors: dict) -> torch.Tensor:
    """(N,) each member's Euclidean norm of `tensors` ({parameter: a tensor of its shape, e.g. its
    gradient}), its blocks found by `Ensemble.member_parts`."""
    squares = torch.zeros(n, dtype=torch.float64)
    for p, k, dim in parts:
        t = tensors.get(p)
        if t is None:
            continue
        t = t.to_dense() if t.is_sparse else t
        if k is not None:
            squares[k] += float(t.double().pow(2).sum())
        else:
            squares += t.double().unflatten(dim, (n, -1)).movedim(dim, 0).reshape(n, -1).pow(2).sum(1).cpu()
    return squares.sqrt()


def scale_members(parts: list, n: int, tensors: dict, factors: torch.Tensor) -> dict:
    """{parameter: its tensor with member k's block times factors[k]} (new tensors; sparse ones dense)."""
    out = {}
    for p, k, dim in parts:
        t = tensors.get(p)
        if t is None:
            continue
        t = t.to_dense() if t.is_sparse else t
        f = factors.to(t.device, t.dtype)
        if k is not None:
            out[p] = t * f[k]
        else:
            shape = [1] * (t.dim() + 1)
            shape[dim] = n
            out[p] = (t.unflatten(dim, (n, -1)) * f.view(shape)).flatten(dim, dim + 1)
    return out
