"""Ensembles with a member dimension, always: `encode(batch)` gives x (B, N, ...), `head(x, batch)`
logits (B, N, C), and members never mix (member k's slice of x feeds only its logits), so the
summed losses give every member exactly its own gradient and an element-wise optimizer (AdaDelta,
Adam, Adamax) takes each member's own step. A single model is an ensemble of one (`Single`).

Forms, chosen by `make_ensemble`:
- a model's hand-fused form (`PairModel.fused`), kept where bench/ensemble.py shows it pays;
- `Vmapped`, the generic fused form of any model: the members' parameters stacked
  (`torch.func.stack_module_state`) and every call vmapped over them (`functional_call` + `vmap`),
  so a new model trains as a fused ensemble with no code of its own;
- `Sequential`, members one after another on the same batch, for models vmap cannot run (a GRU)
  or whose vmapped form fails on the first batch (checked once, then it falls back);
- `SharedTables`, members in turn whose learned word-embedding tables sit side by side in one
  table: one lookup and one (sparse) optimizer update per step for all members, which vmap cannot
  give a sparse embedding.
`checked_on` times the generic forms on the first batch and keeps the fastest.
`unfuse()` gives back ordinary members (model.pt keeps those).
"""

from __future__ import annotations

import copy
import time
import warnings

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class Ensemble(nn.Module):
    """forward(batch) is the ensemble's prediction: the mean of the members' logits (B, C)."""
    n: int = 1

    def forward(self, batch):
        return self.head(self.encode(batch), batch).mean(1)

    def set_double_backward(self, enabled: bool) -> None:
        for member in self.members_list():
            member.set_double_backward(enabled)

    def data_head(self, raw, batch):
        """((B, N, C) logits, space) when x is data read through linear maps (see PairModel.data_head)."""
        return None

    def members_list(self) -> list:
        return []

    def unfuse(self) -> list:
        return self.members_list()

    def member_parts(self) -> list:
        """[(parameter, k, dim)] over every trainable parameter: it is member k's alone (k an int), or
        (k None) it holds every member's block side by side along `dim` (size N x block): what a
        method needs to treat each member's parameters apart (`cftrain.member_parts`)."""
        return [(p, None, self.member_dims.get(name, 0)) for name, p in self.named_parameters() if p.requires_grad]

    member_dims: dict = {}  # a fused form's parameters whose members sit side by side along dim 1 (tables)


def expand_members(x: torch.Tensor, n: int) -> torch.Tensor:
    """(B, ...) -> (B, n, ...): a view, no copy (data every member reads the same)."""
    return x.unsqueeze(1).expand(x.shape[0], n, *x.shape[1:])


class Single(Ensemble):
    """One model as an ensemble of one: its x and logits with a member dimension of 1."""

    def __init__(self, model):
        super().__init__()
        self.model, self.n = model, 1

    def encode(self, batch):
        return self.model.encode(batch).unsqueeze(1)

    def head(self, x, batch):
        return _with_classes(self.model.head(x[:, 0], batch)).unsqueeze(1)

    def data_head(self, raw, batch):
        found = self.model.data_head(raw[:, 0], batch)
        return None if found is None else (_with_classes(found[0]).unsqueeze(1), found[1])

    def members_list(self):
        return [self.model]

    def member_parts(self):
        return [(p, 0, 0) for p in self.model.parameters() if p.requires_grad]


def _with_classes(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, None] if logits.dim() == 1 else logits


class Sequential(Ensemble):
    """Members one after another on the same batch, their outputs stacked along the member dimension."""

    def __init__(self, members: list):
        super().__init__()
        self.members, self.n = nn.ModuleList(members), len(members)

    def encode(self, batch):
        xs = [m.encode(batch) for m in self.members]
        if all(x is xs[0] for x in xs):  # data every member reads: a view, not N copies
            return expand_members(xs[0], self.n)
        return torch.stack(xs, 1)

    def head(self, x, batch):
        return torch.stack([_with_classes(m.head(x[:, k], batch)) for k, m in enumerate(self.members)], 1)

    def data_head(self, raw, batch):
        found = [m.data_head(raw[:, k], batch) for k, m in enumerate(self.members)]
        if any(f is None for f in found):
            return None
        return torch.stack([_with_classes(f[0]) for f in found], 1), MemberSpaces([f[1] for f in found])

    def members_list(self):
        return list(self.members)

    def member_parts(self):
        return [(p, k, 0) for k, m in enumerate(self.members) for p in m.parameters() if p.requires_grad]


class MemberSpaces:
    """The GS data spaces of N members as one (`cftrain.gs_space.DataSpace`): each member's g . t
    and |g|^2 from its own outputs, side by side (E, N)."""

    def __init__(self, spaces: list):
        self.spaces = spaces
        self.outputs = tuple(o for s in spaces for o in s.outputs)

    @property
    def known(self):
        return self.spaces[0].known

    @known.setter
    def known(self, value):
        for space in self.spaces:
            space.known = value

    @property
    def raw(self):
        return self.spaces[0].raw

    def distances(self, edges):
        return self.spaces[0].distances(edges)

    def products(self, grads, edges):
        dots, squares, start = [], [], 0
        for space in self.spaces:
            count = len(space.outputs)
            dot, g_sq = space.products(grads[start:start + count], edges)
            dots.append(dot)
            squares.append(g_sq)
            start += count
        return torch.cat(dots, 1), torch.cat(squares, 1)


class _SharedTable:
    """N members' embedding tables side by side in one (V, N x D) `table`. While `caching` (one
    `SharedTables.encode`), a token tensor's lookup or bag mean is computed once for every member
    (keyed by the tensor's identity, the tensor kept so its memory is not reused); each member reads
    its own columns."""

    def __init__(self, table: nn.Embedding, n: int):
        self.table, self.n, self.dim = table, n, table.embedding_dim // n
        self.caching, self.cache = False, {}

    def once(self, kind: str, tensors: tuple, compute):
        if not self.caching:
            return compute()
        key = (kind, *((t.data_ptr(), tuple(t.shape), t.stride(), t.storage_offset(), t._version) for t in tensors))
        if key not in self.cache:
            self.cache[key] = (tensors, compute())
        return self.cache[key][1]


class MemberColumns(nn.Module):
    """Member k's embedding inside a `_SharedTable`: called like its `nn.Embedding`, or averaged over
    bags by `cftrain.models.mean_embedding` (`bag_mean`), each the member's own D columns."""

    def __init__(self, shared: _SharedTable, k: int):
        super().__init__()
        self.shared, self.k = shared, k  # not a registered module: the table is the ensemble's parameter

    def _own(self, y: torch.Tensor) -> torch.Tensor:
        return y[..., self.k * self.shared.dim:(self.k + 1) * self.shared.dim]

    def forward(self, tokens):
        return self._own(self.shared.once("lookup", (tokens,), lambda: self.shared.table(tokens)))

    def bag_mean(self, tokens, length, average):
        """`average(table, tokens, length)` (mean_embedding) over the shared table, once, then these columns."""
        return self._own(self.shared.once("mean", (tokens, length), lambda: average(self.shared.table, tokens, length)))


def learned_tables(model: nn.Module) -> list:
    """The names of a model's trainable `nn.Embedding` tables (frozen vectors are read, not fused)."""
    return [name for name, m in model.named_modules() if type(m) is nn.Embedding and m.weight.requires_grad
            and m.max_norm is None and not m.scale_grad_by_freq]


class SharedTables(Sequential):
    """Members in turn on copies of the members whose learned embedding tables are columns of one
    table per name (what the hand-fused bag of words does, for any model): exact, since member k's
    outputs read only its columns and the optimizers are element-wise. `unfuse` writes every
    parameter back into the original members."""

    def __init__(self, members: list):
        working = [copy.deepcopy(m) for m in members]
        super().__init__(working)
        self.originals, self.names = members, learned_tables(members[0])
        self.tables, self.shared = nn.ModuleList(), []
        for name in self.names:
            first = members[0].get_submodule(name)
            table = nn.Embedding(first.num_embeddings, self.n * first.embedding_dim, padding_idx=first.padding_idx,
                                 sparse=first.sparse, device=first.weight.device, dtype=first.weight.dtype)
            with torch.no_grad():
                table.weight.copy_(torch.cat([m.get_submodule(name).weight for m in members], dim=1))
            shared = _SharedTable(table, self.n)
            self.tables.append(table)
            self.shared.append(shared)
            parent, _, attribute = name.rpartition(".")
            for k, member in enumerate(working):
                setattr(member.get_submodule(parent) if parent else member, attribute, MemberColumns(shared, k))

    def encode(self, batch):
        for shared in self.shared:
            shared.caching = True
        try:
            return super().encode(batch)
        finally:
            for shared in self.shared:  # the cached lookups hold the step's graph: let it go
                shared.caching, shared.cache = False, {}

    def members_list(self):
        return list(self.members)

    def member_parts(self):
        return super().member_parts() + [(t.weight, None, 1) for t in self.tables if t.weight.requires_grad]

    def unfuse(self) -> list:
        with torch.no_grad():
            for k, (member, original) in enumerate(zip(self.members, self.originals)):
                state = dict(member.state_dict())
                for name, shared in zip(self.names, self.shared):
                    state[f"{name}.weight"] = shared.table.weight[:, k * shared.dim:(k + 1) * shared.dim]
                original.load_state_dict(state)
        return self.originals


class _Call(nn.Module):
    """functional_call runs `forward`: this one runs the wrapped model's method `name`."""

    def __init__(self, model, name):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, *args):
        return getattr(self.model, self.name)(*args)


class Vmapped(Ensemble):
    """The generic fused form: members' parameters stacked along a first dimension of size N and
    every call of the model vmapped over them (dropout draws differently per member)."""

    def __init__(self, members: list):
        super().__init__()
        self.n, self.members = len(members), members  # members kept outside: unfuse() writes into them
        params, buffers = stack_module_state(members)
        self.names = sorted(params)
        self.stacked = nn.ParameterList(nn.Parameter(params[k].detach().clone()) for k in self.names)
        self.buffer_names = sorted(buffers)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[name].clone())
        base = copy.deepcopy(members[0]).to("meta")
        self.calls = {name: _Call(base, name) for name in ("encode", "head")}

    def _state(self):
        params = {f"model.{k}": p for k, p in zip(self.names, self.stacked)}
        buffers = {f"model.{k}": getattr(self, f"buffer_{i}") for i, k in enumerate(self.buffer_names)}
        return params, buffers

    def encode(self, batch):
        params, buffers = self._state()
        run = lambda p, b: functional_call(self.calls["encode"], (p, b), (batch,))  # noqa: E731
        return vmap(run, randomness="different")(params, buffers).movedim(0, 1)

    def head(self, x, batch):
        params, buffers = self._state()
        run = lambda p, b, xk: _with_classes(functional_call(self.calls["head"], (p, b), (xk, batch)))  # noqa: E731
        return vmap(run, randomness="different")(params, buffers, x.movedim(1, 0)).movedim(0, 1)

    def set_double_backward(self, enabled: bool) -> None:
        self.calls["encode"].model.set_double_backward(enabled)
        for member in self.members:
            member.set_double_backward(enabled)

    def members_list(self):
        return self.members

    def unfuse(self) -> list:
        with torch.no_grad():
            for k, member in enumerate(self.members):
                state = {name: p[k] for name, p in zip(self.names, self.stacked)}
                state.update({name: getattr(self, f"buffer_{i}")[k] for i, name in enumerate(self.buffer_names)})
                member.load_state_dict(state, strict=False)
        return self.members


class FusedEnsemble(Ensemble):
    """A model's hand-fused form: subclasses stack the members' layers and write them back in
    `unfuse`."""

    def __init__(self, members: list):
        super().__init__()
        self.n = len(members)
        self.members = members  # kept outside the module's parameters: unfuse() writes into them

    def set_double_backward(self, enabled: bool) -> None:
        pass

    def members_list(self):
        return self.members

    @staticmethod
    def _stack(tensors) -> nn.Parameter:
        return nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))


class StackedLinear(nn.Module):
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


def make_ensemble(members: list, generic: bool = True) -> Ensemble:
    """The ensemble of `members` (one model class): Single, its hand-fused form, Vmapped, or
    Sequential when the model says vmap cannot run it (`vmappable = False`) or `generic` is off."""
    if len(members) == 1:
        return Single(members[0])
    cls, first = type(members[0]), members[0]
    if getattr(cls, "fused", None) is not None and getattr(first, "fusable", True):
        return cls.fused(members)
    if generic and getattr(first, "vmappable", True):
        return Vmapped(members)
    return Sequential(members)


def _trial_step(ensemble: Ensemble, batch: dict, double: bool, forward) -> None:
    """A step's forward (`forward`: the training step's, a data space where the model offers one) and
    backward, with the input gradient differentiated again when `double`; its gradients returned,
    not kept: no parameter, gradient or buffer changes (eval mode)."""
    with torch.enable_grad():
        x, logits, space = forward(ensemble, batch, double)
        loss = logits.pow(2).sum()
        if double:
            inputs = space.outputs if space is not None else (x,)
            loss = loss + sum(g.pow(2).sum() for g in torch.autograd.grad(logits.sum(), inputs, create_graph=True))
        torch.autograd.grad(loss, [p for p in ensemble.parameters() if p.requires_grad], allow_unused=True)


def _seconds(ensemble: Ensemble, batch: dict, double: bool, forward, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        _trial_step(ensemble, batch, double, forward)
        best = min(best, time.perf_counter() - start)
    return best


def checked_on(ensemble: Ensemble, batch: dict, double: bool, forward) -> Ensemble:
    """The generic form that trains this model fastest, on this first batch: the vmapped members,
    the members one after another, or (for a model with learned embedding tables) the members in
    turn over one shared table; all exact. Each is timed on a few steps of this batch without
    changing anything. A vmapped form that fails (a layer without a vmap rule) is said once and left
    out; a model that says vmap cannot run it (`vmappable`: butd's GRU, a sparse table's row gather)
    is not tried vmapped, and with learned tables still gets the shared form."""
    in_turn = type(ensemble) is Sequential and learned_tables(ensemble.members[0])
    if not isinstance(ensemble, Vmapped) and not in_turn:
        return ensemble
    members = list(ensemble.members)
    candidates = [Sequential(members)] + ([SharedTables(members)] if learned_tables(members[0]) else [])
    modes = [(m, m.training) for m in (ensemble, *members)]
    try:
        for module, _ in modes:
            module.eval()  # batch norm's running statistics stay as they are
        try:
            if isinstance(ensemble, Vmapped):
                _trial_step(ensemble, batch, double, forward)  # also its warm-up
                candidates.append(ensemble)
        except (RuntimeError, NotImplementedError, ValueError) as exc:
            warnings.warn(f"{type(members[0]).__name__}: vmap cannot run it "
                          f"({' '.join(str(exc).split())[:120]}); it trains without vmap")
        if len(candidates) == 1:
            return candidates[0]
        for candidate in candidates:
            if candidate is not ensemble:
                candidate.eval()
                _trial_step(candidate, batch, double, forward)  # warm-up, then every form is timed
        faster = min(candidates, key=lambda form: _seconds(form, batch, double, forward))
    finally:
        for module, training in modes:
            module.train(training)
    faster.train(ensemble.training)
    return faster


__all__ = ["Ensemble", "FusedEnsemble", "MemberColumns", "MemberSpaces", "SharedTables", "StackedLinear", "Sequential",
           "Single", "Vmapped", "checked_on", "expand_members", "learned_tables", "make_ensemble"]
