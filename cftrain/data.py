"""Splits of a pair store as tensors, and mini-batches that keep whole pair groups together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cfbuild.store import Store

INPUT_FIELDS = {
    "text": ("tokens", "length"),
    "text_pair": ("premise_tokens", "premise_length", "hypothesis_tokens", "hypothesis_length"),
    "vector": ("x",),
}


@dataclass
class SplitTensors:
    """One split in memory: model inputs, dense targets, and the pair structure."""
    name: str
    inputs: dict             # field -> tensor (N, ...)
    targets: torch.Tensor    # (N, C) float: one column for binary, one-hot for multiclass
    labels: torch.Tensor     # (N,) int class index (binary/multiclass), for accuracy
    is_counterfactual: torch.Tensor
    pairs: np.ndarray        # (P, 2) rows of (original, counterfactual)
    subsets: dict            # name -> row indices

    def __len__(self) -> int:
        return len(self.targets)

    def rows(self, index) -> "SplitTensors":
        """A new split of the given rows; pairs are kept only when both members are kept."""
        index = np.asarray(index)
        remap = np.full(len(self), -1)
        remap[index] = np.arange(len(index))
        pairs = remap[self.pairs] if len(self.pairs) else self.pairs
        pairs = pairs[(pairs >= 0).all(1)] if len(pairs) else pairs
        subsets = {k: remap[v][remap[v] >= 0] for k, v in self.subsets.items()}
        t = torch.as_tensor(index)
        return SplitTensors(self.name, {k: v[t] for k, v in self.inputs.items()}, self.targets[t], self.labels[t],
                            self.is_counterfactual[t], pairs, subsets)


def dense_targets(split, label_kind: str, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    if label_kind == "binary":
        label = torch.as_tensor(split.read("label"))
        return label[:, None].float(), label
    if label_kind == "multiclass":
        label = torch.as_tensor(split.read("label"))
        return torch.nn.functional.one_hot(label, n_classes).float(), label
    if label_kind == "multilabel":
        multi = torch.as_tensor(split.read("label")).float()
        return multi, multi.argmax(1)
    index, score = split.read("label_index"), split.read("label_score")
    dense = np.zeros((len(index), n_classes), np.float32)
    rows = np.repeat(np.arange(len(index)), index.shape[1])
    keep = index.ravel() >= 0
    dense[rows[keep], index.ravel()[keep]] = score.ravel()[keep]
    return torch.as_tensor(dense), torch.as_tensor(dense.argmax(1))


def load_split(store: Store, name: str) -> SplitTensors:
    split = store.split(name)
    fields = INPUT_FIELDS.get(store.input_kind)
    if fields is None:
        raise NotImplementedError(f"input kind {store.input_kind!r} is not trainable in memory")
    inputs = {f: torch.as_tensor(split.read(f)) for f in fields}
    inputs = {f: (v.long() if v.dtype == torch.int32 else v) for f, v in inputs.items()}
    targets, labels = dense_targets(split, store.label_kind, len(store.class_names))
    return SplitTensors(name, inputs, targets, labels, torch.as_tensor(split.read("is_counterfactual")),
                        split.pairs_index[()], {k: v[()] for k, v in split.subsets.items()})


def pair_groups(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Rows grouped by pair connectivity (an SNLI original with its 4 edits is one group)."""
    parent = np.arange(n)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(n)])
    order = np.argsort(roots, kind="stable")
    bounds = np.flatnonzero(np.diff(roots[order])) + 1
    return np.split(order, bounds)


class PairBatches:
    """Shuffled mini-batches of whole pair groups, about `batch_size` examples each.

    Each group's edges are computed once, in the group's local row order, so that
    building a batch costs its own size rather than the split's.
    """

    def __init__(self, data: SplitTensors, batch_size: int, seed: int):
        self.data = data
        self.groups = pair_groups(len(data), data.pairs)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        local = np.empty(len(data), dtype=np.int64)
        owner = np.empty(len(data), dtype=np.int64)
        for g, rows in enumerate(self.groups):
            local[rows], owner[rows] = np.arange(len(rows)), g
        pairs = np.asarray(data.pairs, dtype=np.int64).reshape(-1, 2)
        both = np.concatenate([pairs, pairs[:, ::-1]])  # both members of a pair are supervised
        by_group = owner[both[:, 0]] if len(both) else np.zeros(0, np.int64)
        order = np.argsort(by_group, kind="stable")
        bounds = np.searchsorted(by_group[order], np.arange(len(self.groups) + 1))
        self.group_edges = [local[both[order[a:b]]] for a, b in zip(bounds[:-1], bounds[1:])]

    def __iter__(self):
        batch: list = []
        size = 0
        for g in self.rng.permutation(len(self.groups)):
            if size and size + len(self.groups[g]) > self.batch_size:
                yield self._batch(batch)
                batch, size = [], 0
            batch.append(g)
            size += len(self.groups[g])
        if batch:
            yield self._batch(batch)

    def __len__(self) -> int:
        return max(1, int(np.ceil(len(self.data) / self.batch_size)))

    def _batch(self, groups: list) -> dict:
        sizes = np.array([len(self.groups[g]) for g in groups])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rows = torch.as_tensor(np.concatenate([self.groups[g] for g in groups]))
        edges = np.concatenate([self.group_edges[g] + o for g, o in zip(groups, offsets)])
        return {**{k: v[rows] for k, v in self.data.inputs.items()}, "targets": self.data.targets[rows],
                "edges": torch.as_tensor(edges.reshape(-1, 2), dtype=torch.long)}
