"""Splits of a pair store as tensors, and mini-batches that keep whole pair groups together."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from cfpairs.arrays import concat_ranges, group_roots
from cftrain.labels import SoftTargets, training_labels
from cfpairs.store import RegionFeatureReader, Store
from cfpairs.schema import model_input_fields
from cftrain.gs import edge_distances


def dense(targets) -> torch.Tensor:
    return targets.dense() if isinstance(targets, SoftTargets) else targets


def to_device(batch: dict, device) -> dict:
    """The batch's tensors on `device` (a no-op on the CPU)."""
    if str(device) == "cpu":
        return batch
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}


class RegionFeatures(RegionFeatureReader):
    """The store's region features by image rows, as a torch tensor (see RegionFeatureReader)."""

    def read(self, image_rows: np.ndarray, keep: np.ndarray | None = None) -> torch.Tensor:
        return torch.as_tensor(super().read(image_rows, keep))


@dataclass
class SplitTensors:
    """One split: model inputs in memory (region features read per batch), targets, pair structure."""
    name: str
    inputs: dict             # field -> tensor (N, ...)
    targets: object          # (N, C) float tensor (one column for binary, one-hot, multi-hot) or SoftTargets
    labels: torch.Tensor     # (N,) int class index (-1: none), for accuracy
    is_counterfactual: torch.Tensor
    pairs: np.ndarray        # (P, 2) rows of (original, counterfactual)
    subsets: dict            # name -> row indices
    features: RegionFeatures | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def rows(self, index) -> "SplitTensors":
        """A new split of the given rows; pairs are kept only when both members are kept."""
        index = np.asarray(index, dtype=np.int64)
        remap = np.full(len(self), -1)
        remap[index] = np.arange(len(index))
        pairs = remap[self.pairs] if len(self.pairs) else self.pairs
        pairs = pairs[(pairs >= 0).all(1)] if len(pairs) else pairs
        subsets = {k: remap[v][remap[v] >= 0] for k, v in self.subsets.items()}
        t = torch.as_tensor(index)
        return replace(self, inputs={k: v[t] for k, v in self.inputs.items()}, targets=self.targets[t],
                       labels=self.labels[t], is_counterfactual=self.is_counterfactual[t], pairs=pairs,
                       subsets=subsets)

    def batch(self, rows) -> dict:
        """Model inputs of `rows`; region stores add `features` (B, R, D) with masked regions zeroed."""
        t = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        out = {k: v[t] for k, v in self.inputs.items()}
        if self.features is not None:
            out["features"] = self.features.read(out["image_row"].numpy(), out["region_mask"].numpy())
        return out


def load_split(store: Store, name: str) -> SplitTensors:
    split = store.split(name)
    inputs = {f: torch.as_tensor(split.read(f)) for f in model_input_fields(store.input_kind)}
    inputs = {f: (v.long() if v.dtype == torch.int32 else v) for f, v in inputs.items()}
    targets, labels = training_labels(store.label_kind).targets(split.read, len(store.class_names))
    subsets = {k: v[()] for k, v in split.subsets.items()}
    features = RegionFeatures(store.path) if store.regions_info() is not None else None
    return SplitTensors(name, inputs, targets, labels, torch.as_tensor(split.read("is_counterfactual")),
                        split.pairs_index[()], subsets, features)


def pair_groups(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Rows grouped by pair connectivity (an SNLI original with its 4 edits is one group),
    groups in order of their smallest row."""
    roots = group_roots(n, pairs)
    order = np.argsort(roots, kind="stable")
    bounds = np.flatnonzero(np.diff(roots[order])) + 1
    return np.split(order, bounds)


def group_subset(data: SplitTensors, fraction: float, seed: int) -> SplitTensors:
    """The rows of the first ceil(fraction x G) pair groups of a seeded permutation of the G groups:
    the same seed gives nested subsets as the fraction grows (a learning curve's x axis)."""
    if fraction >= 1:
        return data
    groups = pair_groups(len(data), data.pairs)
    order = np.random.default_rng(seed).permutation(len(groups))
    kept = order[:max(1, int(np.ceil(fraction * len(groups))))]
    return data.rows(np.sort(np.concatenate([groups[g] for g in kept])))


class PairBatches:
    """Shuffled mini-batches of whole pair groups, about `batch_size` examples each.

    Groups and their edges (in each group's local row order) are laid out flat once, so a
    batch is gathered with a few vectorised index operations whatever the split's size.
    """

    def __init__(self, data: SplitTensors, batch_size: int, seed: int, shard: tuple = (0, 1)):
        self.data, self.shard = data, shard  # shard: (rank, world) under torchrun
        self.groups = pair_groups(len(data), data.pairs)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.group_len = np.array([len(rows) for rows in self.groups], np.int64)
        self.group_start = np.cumsum(self.group_len) - self.group_len
        self.group_rows = np.concatenate(self.groups) if self.groups else np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(self.groups)), self.group_len)
        local = np.empty(len(data), dtype=np.int64)
        local[self.group_rows] = np.arange(len(self.group_rows)) - self.group_start[owner]
        owner_of = np.empty(len(data), dtype=np.int64)
        owner_of[self.group_rows] = owner
        pairs = np.asarray(data.pairs, dtype=np.int64).reshape(-1, 2)
        both = np.concatenate([pairs, pairs[:, ::-1]])  # both members of a pair are supervised
        by_group = owner_of[both[:, 0]] if len(both) else np.zeros(0, np.int64)
        order = np.argsort(by_group, kind="stable")
        self.edges_local = local[both[order]].reshape(-1, 2)
        self.edge_distance = None  # |x_j - x_i| of every edge over a data vector input, once per split
        if isinstance(data.inputs.get("x"), torch.Tensor) and data.inputs["x"].is_floating_point():
            self.edge_distance = edge_distances(data.inputs["x"].flatten(1), torch.as_tensor(both[order]))
        self.edge_len = np.bincount(by_group, minlength=len(self.groups)).astype(np.int64)
        self.edge_start = np.cumsum(self.edge_len) - self.edge_len

    def plan(self) -> list:
        """One epoch: shuffled groups packed into batches of about `batch_size` rows."""
        batches, current, size = [], [], 0
        for g in self.rng.permutation(len(self.groups)):
            if size and size + len(self.groups[g]) > self.batch_size:
                batches.append(current)
                current, size = [], 0
            current.append(g)
            size += len(self.groups[g])
        if current:
            batches.append(current)
        return batches

    def local_plan(self) -> list:
        """This rank's share of each global batch: (its groups, the global batch's rows)."""
        rank, world = self.shard
        return [(groups[rank::world], int(self.group_len[groups].sum())) for groups in self.plan()]

    def __iter__(self):
        if self.shard[1] > 1:
            return (self.make_batch(groups, global_rows) for groups, global_rows in self.local_plan())
        return (self.make_batch(groups) for groups in self.plan())

    def __len__(self) -> int:
        return max(1, int(np.ceil(len(self.data) / self.batch_size)))

    def make_batch(self, groups: list, global_rows: int | None = None) -> dict:
        """The batch of these groups; with `global_rows` (torchrun), also `share`: this rank's
        rows over the global batch's (0, and no rows, when the rank has no group this step)."""
        if global_rows is not None:
            if not len(groups):
                return {"share": 0.0}
            batch = self.make_batch(groups)
            return {**batch, "share": len(batch["targets"]) / global_rows}
        groups = np.asarray(groups, dtype=np.int64)
        sizes, n_edges = self.group_len[groups], self.edge_len[groups]
        rows = self.group_rows[concat_ranges(self.group_start[groups], sizes)]
        offsets = np.repeat(np.cumsum(sizes) - sizes, n_edges)
        edge_rows = concat_ranges(self.edge_start[groups], n_edges)
        edges = self.edges_local[edge_rows] + offsets[:, None]
        batch = {**self.data.batch(rows), "targets": dense(self.data.targets[torch.as_tensor(rows)]),
                 "edges": torch.as_tensor(edges, dtype=torch.long)}
        if self.edge_distance is not None:
            batch["edge_distances"] = self.edge_distance[torch.as_tensor(edge_rows)]
        return batch

    def loader(self, workers: int = 0):
        """This epoch's batches, built in `workers` processes (each opens the store itself) when > 0."""
        if workers <= 0:
            return iter(self)
        epoch = _PlannedBatches(self, self.local_plan() if self.shard[1] > 1 else [(g, None) for g in self.plan()])
        return iter(torch.utils.data.DataLoader(epoch, batch_size=None, shuffle=False, num_workers=workers))


class _PlannedBatches(torch.utils.data.Dataset):
    """A torch Dataset whose item i is batch i of one epoch's plan (whole pair groups)."""

    def __init__(self, batches: PairBatches, plan: list):
        self.batches, self.plan = batches, plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int) -> dict:
        return self.batches.make_batch(*self.plan[i])
