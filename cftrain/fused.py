"""Ensembles in one pass: N members of one model stacked along a member dimension, so one
forward, one GS gradient and one backward serve them all.

`encode` gives x (B, N, ...) and `head` logits (B, N, C); members never mix (each member's
slice of x only feeds its own logits), so the summed losses give every member exactly the
gradient it would get alone, and with an element-wise optimizer (AdaDelta, Adam, Adamax) each
member's step is its step alone. `fuse(members)` copies the members' weights in, `unfuse()`
copies them back out (model.pt keeps ordinary members). `mlp` reads one shared input: its
members' first layers are one wide linear layer, and GS runs in that layer's output space
(`data_head`), where each member's slice is its own. `butd` has no fused form: its members
train one after another on the same batches.
Adding a fused form = one class here, registered in FUSED under the model's name.
"""

from __future__ import annotations

import torch
from torch import nn

from cftrain.gs_space import FirstLayerSpace, first_layer
from cftrain.models import mean_embedding

FUSED: dict[str, type] = {}


def register(name: str):
    def wrap(cls):
        FUSED[name] = cls
        return cls
    return wrap


def fuse(model_name: str, members: list):
    """The fused ensemble of `members`, or None when the model has no fused form."""
    if len(members) < 2 or model_name not in FUSED:
        return None
    return FUSED[model_name](members)


class FusedEnsemble(nn.Module):
    """forward(batch) is the ensemble's prediction: the mean of the members' logits."""
    is_fused = True

    def __init__(self, members: list):
        super().__init__()
        self.n = len(members)
        self.members = members  # kept outside the module's parameters: unfuse() writes into them

    def forward(self, batch):
        return self.head(self.encode(batch), batch).mean(1)

    def set_double_backward(self, enabled: bool) -> None:
        pass

    def data_head(self, raw, batch):
        return None  # see PairModel.data_head

    @staticmethod
    def _stack(tensors) -> nn.Parameter:
        return nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))


class _StackedLinear(nn.Module):
    """N linear layers: (B, N, i) -> (B, N, o), weights (N, i, o)."""

    def __init__(self, linears: list):
        super().__init__()
        self.weight = FusedEnsemble._stack([l.weight.t() for l in linears])
        self.bias = FusedEnsemble._stack([l.bias for l in linears])

    def forward(self, h):
        return torch.einsum("...ni,nio->...no", h, self.weight) + self.bias

    def copy_to(self, linears: list) -> None:
        with torch.no_grad():
            for k, linear in enumerate(linears):
                linear.weight.copy_(self.weight[k].t())
                linear.bias.copy_(self.bias[k])


@register("bow")
class FusedBagOfWords(FusedEnsemble):
    """One embedding table of width N x D (member k: columns k*D..(k+1)*D), averaged once."""

    def __init__(self, members: list):
        super().__init__(members)
        first = members[0].embed
        self.dim = first.embedding_dim
        self.embed = nn.Embedding(first.num_embeddings, self.n * self.dim, padding_idx=0, sparse=first.sparse)
        with torch.no_grad():
            self.embed.weight.copy_(torch.cat([m.embed.weight for m in members], dim=1))
        self.out = _StackedLinear([m.out for m in members])

    def encode(self, batch):
        x = mean_embedding(self.embed, batch["tokens"], batch["length"])
        return x.view(x.shape[0], self.n, self.dim)

    def head(self, x, batch):
        return self.out(x)

    def unfuse(self) -> list:
        with torch.no_grad():
            for k, m in enumerate(self.members):
                m.embed.weight.copy_(self.embed.weight[:, k * self.dim:(k + 1) * self.dim])
        self.out.copy_to([m.out for m in self.members])
        return self.members


def _stacked_norm(norms: list) -> nn.BatchNorm1d:
    """N batch norms of width d as one of width N x d: per-feature statistics are per member."""
    fused = nn.BatchNorm1d(len(norms) * norms[0].num_features, eps=norms[0].eps, momentum=norms[0].momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(fused, name).copy_(torch.cat([getattr(n, name) for n in norms]))
        fused.num_batches_tracked.copy_(norms[0].num_batches_tracked)
    return fused


def _norm_to(fused: nn.BatchNorm1d, norms: list) -> None:
    d = norms[0].num_features
    with torch.no_grad():
        for k, norm in enumerate(norms):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(norm, name).copy_(getattr(fused, name)[k * d:(k + 1) * d])
            norm.num_batches_tracked.copy_(fused.num_batches_tracked)


@register("nli-bow")
class FusedNliBagOfWords(FusedEnsemble):
    """Frozen word vectors looked up once for all members (learned ones: a table of width N x E);
    projections, batch norms and classifiers stacked per member."""

    def __init__(self, members: list):
        super().__init__(members)
        first = members[0].embed
        self.frozen = not first.weight.requires_grad
        self.embed_dim = first.embedding_dim
        if self.frozen:
            self.embed = nn.Embedding.from_pretrained(first.weight.detach(), freeze=True, padding_idx=0)
        else:
            self.embed = nn.Embedding(first.num_embeddings, self.n * self.embed_dim, padding_idx=0, sparse=first.sparse)
            with torch.no_grad():
                self.embed.weight.copy_(torch.cat([m.embed.weight for m in members], dim=1))
        self.project = _StackedLinear([m.project[0] for m in members])
        self.norm_premise = _stacked_norm([m.norm_premise for m in members])
        self.norm_hypothesis = _stacked_norm([m.norm_hypothesis for m in members])
        self.layers = nn.ModuleList(_StackedLinear([m.classifier[i] for m in members])
                                    for i in range(len(members[0].classifier))
                                    if isinstance(members[0].classifier[i], nn.Linear))

    def _projected(self, tokens, length):
        """(B, N, dim): each member's projection, ReLU, mean over the real tokens."""
        return mean_embedding(self._project_tokens, tokens, length)

    def _project_tokens(self, tokens):
        """(T, N, dim) for a flat tensor of T real tokens."""
        e = self.embed(tokens)
        if not self.frozen:
            return torch.relu(self.project(e.view(len(tokens), self.n, self.embed_dim)))
        # one lookup serves every member: one matrix product with every member's weights side by side
        weight = self.project.weight.permute(1, 0, 2).reshape(self.embed_dim, -1)
        return torch.relu((e @ weight).view(len(tokens), self.n, -1) + self.project.bias)

    def _normed(self, norm, h):
        return norm(h.reshape(h.shape[0], -1)).view_as(h)

    def encode(self, batch):
        premise = self._normed(self.norm_premise, self._projected(batch["premise_tokens"], batch["premise_length"]))
        hypothesis = self._normed(self.norm_hypothesis,
                                  self._projected(batch["hypothesis_tokens"], batch["hypothesis_length"]))
        return torch.cat([premise, hypothesis], dim=2)

    def head(self, x, batch):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x

    def unfuse(self) -> list:
        if not self.frozen:
            with torch.no_grad():
                for k, m in enumerate(self.members):
                    m.embed.weight.copy_(self.embed.weight[:, k * self.embed_dim:(k + 1) * self.embed_dim])
        self.project.copy_to([m.project[0] for m in self.members])
        _norm_to(self.norm_premise, [m.norm_premise for m in self.members])
        _norm_to(self.norm_hypothesis, [m.norm_hypothesis for m in self.members])
        linears = [[layer for layer in m.classifier if isinstance(layer, nn.Linear)] for m in self.members]
        for i, layer in enumerate(self.layers):
            layer.copy_to([ls[i] for ls in linears])
        return self.members


class _MemberLinear(nn.Module):
    """One linear layer holding N members' first layers: (B, D) -> (B, N, h); `weight` (N, h, D)."""

    def __init__(self, linear: nn.Linear, n: int):
        super().__init__()
        self.linear, self.n = linear, n

    @property
    def weight(self):
        return self.linear.weight.view(self.n, -1, self.linear.in_features)

    def forward(self, x):
        return self.linear(x).view(x.shape[0], self.n, -1)


@register("mlp")
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
        self.layers = nn.ModuleList(_StackedLinear([ls[i] for ls in linears]) for i in range(1, len(linears[0])))

    def encode(self, batch):
        return batch["x"]

    def _rest(self, h, batch=None):
        h = h.transpose(0, 1)  # (N, B, h): member-major, so each layer is one batched matrix product
        for layer in self.layers:
            h = torch.baddbmm(layer.bias[:, None, :], torch.relu(h), layer.weight)
        return h.transpose(0, 1)

    def head(self, x, batch):
        return self._rest(self.first(x))

    def data_head(self, raw, batch):
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
