"""Vector stores' model (toy, COCO): ReLU layers, a linear output; GS in its first layer's output
space (`data_head`). Its hand-fused ensemble puts every member's first layer side by side in one
wide layer on the shared input (one matrix product) and the later ones member-major."""

from __future__ import annotations

import torch
from torch import nn

from cftrain.ensemble import FusedEnsemble, StackedLinear, expand_members
from cftrain.gs_space import FirstLayerSpace, first_layer
from cftrain.models import PairModel, register
from cftrain.options import HIDDEN


@register("mlp")
class MLP(PairModel):
    """Vector stores (toy, COCO): ReLU layers of `hidden` widths, linear output. GS space: the input."""
    input_kinds = ("vector",)
    options = (HIDDEN,)
    learned_encoding = False

    def __init__(self, input_dim: int, n_outputs: int = 1, hidden: tuple = tuple(HIDDEN.default)):
        super().__init__()
        layers, width = [], input_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, n_outputs))

    def encode(self, batch):
        return batch["x"]

    def head(self, x, batch):
        return self.net(x)

    def data_head(self, raw, batch):
        y, gram = first_layer(raw, self.net[0])
        return self.net[1:](y), FirstLayerSpace(raw, y, gram)


class _MemberLinear(nn.Module):
    """One linear layer holding N members' first layers: (B, D) -> (B, N, h); `weight` (N, h, D)."""

    def __init__(self, linear: nn.Linear, n: int):
        super().__init__()
        self.linear, self.n = linear, n

    @property
    def weight(self):
        return self.linear.weight.view(self.n, -1, self.linear.in_features)

    def forward(self, x):
        """(B, N, D) -> (B, N, h): one wide product when every member reads the same input (an
        expanded view, the usual case), else each member's block on its own slice."""
        if x.stride(1) == 0:
            return self.linear(x[:, 0]).view(x.shape[0], self.n, -1)
        return torch.einsum("bnd,nhd->bnh", x, self.weight) + self.linear.bias.view(self.n, -1)


class FusedMLP(FusedEnsemble):
    """Every member's first layer side by side in one linear layer on the shared input (one
    matrix product), the later layers stacked per member."""

    def __init__(self, members: list):
        super().__init__(members)
        linears = [[layer for layer in m.net if isinstance(layer, nn.Linear)] for m in members]
        first = [ls[0] for ls in linears]
        wide = nn.Linear(first[0].in_features, self.n * first[0].out_features)
        with torch.no_grad():
            wide.weight.copy_(torch.cat([l.weight for l in first]))
            wide.bias.copy_(torch.cat([l.bias for l in first]))
        self.first = _MemberLinear(wide, self.n)
        self.layers = nn.ModuleList(StackedLinear([ls[i] for ls in linears]) for i in range(1, len(linears[0])))

    def encode(self, batch):
        return expand_members(batch["x"], self.n)

    def _rest(self, h, batch=None):
        h = h.transpose(0, 1)  # (N, B, h): member-major, so each layer is one batched matrix product
        for layer in self.layers:
            h = torch.baddbmm(layer.bias[:, None, :], torch.relu(h), layer.weight)
        return h.transpose(0, 1)

    def head(self, x, batch):
        return self._rest(self.first(x))

    def data_head(self, raw, batch):
        raw = raw[:, 0]  # the input every member reads (encode expands it)
        y, gram = first_layer(raw, self.first.linear, self.n)
        return self._rest(y), FirstLayerSpace(raw, y, gram)

    def unfuse(self) -> list:
        linears = [[layer for layer in m.net if isinstance(layer, nn.Linear)] for m in self.members]
        with torch.no_grad():
            for k, ls in enumerate(linears):
                ls[0].weight.copy_(self.first.weight[k])
                ls[0].bias.copy_(self.first.linear.bias.view(self.n, -1)[k])
        for i, layer in enumerate(self.layers, start=1):
            layer.copy_to([ls[i] for ls in linears])
        return self.members


MLP.fused = FusedMLP
