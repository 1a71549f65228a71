"""GS on data inputs without differentiating back to them.

When the GS space is data (raw inputs: COCO vectors, VQA region features) and the model reads
it only through maps that are linear in it, y_k = M_k raw, the input gradient is
g = sum_k M_k^T d_k with d_k = d logit / d y_k, and the cosine needs only

    g . t = sum_k d_k . (M_k t)        |g|^2 = sum_kl d_k^T M_k M_l^T d_l        |t| from data,

which for a first layer M = W (h x D, h < D) is far cheaper than forming g in D dimensions and
differentiating it again. A model offers this with `PairModel.data_head(raw, batch)` returning
(logits, space); `cftrain.gs` then differentiates the logits w.r.t. `space.outputs` and asks
`space.products` for g . t and |g|^2 of each edge. Exact: tests compare with the input-space path.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from cftrain.gs import edge_distances


class _LinearAndGram(torch.autograd.Function):
    """(raw W^T + b, W_k W_k^T for each member's block W_k of rows): both gradients of W, from the
    layer and from the Gram matrices, summed into one buffer (no second product, no extra add)."""

    @staticmethod
    def forward(ctx, raw, weight, bias, members: int):
        ctx.save_for_backward(raw, weight)
        ctx.members = members
        blocks = weight.view(members, -1, weight.shape[1])
        flat = raw.reshape(-1, raw.shape[-1])
        out = torch.addmm(bias, flat, weight.t()).view(*raw.shape[:-1], len(weight))
        return out, torch.bmm(blocks, blocks.transpose(1, 2))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_gram):
        raw, weight = ctx.saved_tensors
        flat = raw.reshape(-1, raw.shape[-1])
        grad_out = flat.new_zeros(len(flat), len(weight)) if grad_out is None else grad_out.reshape(len(flat), -1)
        grad_weight = grad_out.t() @ flat
        if grad_gram is not None:  # d(W_k W_k^T) = (G + G^T) W_k for an upstream gradient G
            blocks = weight.view(ctx.members, -1, weight.shape[1])
            grad_weight.view_as(blocks).baddbmm_(grad_gram + grad_gram.transpose(1, 2), blocks)
        grad_raw = (grad_out @ weight).view_as(raw) if ctx.needs_input_grad[0] else None
        return grad_raw, grad_weight, grad_out.sum(0), None


def first_layer(raw: torch.Tensor, linear: torch.nn.Linear, members: int = 1) -> tuple:
    """(y, gram): `linear` on data inputs `raw` (..., D) -> (..., h), or (B, N, h) for `members`
    N > 1 whose layers are the N blocks of `linear`'s rows, and the (N, h, h) Gram matrices."""
    out, gram = _LinearAndGram.apply(raw, linear.weight, linear.bias, members)
    return (out if members == 1 else out.view(len(raw), members, -1)), gram


class DataSpace:
    """What `cftrain.gs` needs of a GS space that is data: `outputs`, the tensors to differentiate
    the logits by, `products(grads, edges)` -> (g . t, |g|^2), each (E, N) for N members, and
    `distances(edges)` -> |t| (E,), from `known` (the loader's, for the batch's own edges) or raw."""
    outputs: tuple = ()

    def __init__(self, raw: torch.Tensor):
        self.raw, self.known = raw, None

    def distances(self, edges: torch.Tensor) -> torch.Tensor:
        return edge_distances(self.raw.flatten(1), edges) if self.known is None else self.known

    def products(self, grads: tuple, edges: torch.Tensor) -> tuple:
        raise NotImplementedError


def rows_of(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """values[rows], without a copy when `rows` is every row in order (a batch of pairs)."""
    if len(rows) == len(values) and bool((rows == torch.arange(len(rows), device=rows.device)).all()):
        return values
    return values.index_select(0, rows)


class FirstLayerSpace(DataSpace):
    """y = raw W^T + b (B, h), or (B, N, h) for N fused members with grams (N, h, h):
    g . t = d . (y_j - y_i) (the bias cancels), |g|^2 = d^T (W W^T) d."""

    def __init__(self, raw, y, gram):
        super().__init__(raw)
        self.outputs, self.gram = (y,), gram

    def products(self, grads, edges):
        y, d = self.outputs[0], grads[0]
        if y.dim() == 2:
            y, d = y.unsqueeze(1), d.unsqueeze(1)
        d = rows_of(d, edges[:, 0])
        dot = (d * (y.index_select(0, edges[:, 1]) - rows_of(y, edges[:, 0]))).sum(2)
        d_gram = d @ self.gram[0] if len(self.gram) == 1 else torch.einsum("enh,nhk->enk", d, self.gram)
        return dot, (d_gram * d).sum(2)
