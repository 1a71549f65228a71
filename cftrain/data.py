"""Splits of a pair store as tensors (read through the public reader, `cfpairs.open_store`), and
mini-batches that keep whole pair groups together, served by torch's DataLoader: a sampler
(`PairGroupSampler`) draws each epoch's groups, the dataset (`PairBatches`) gathers a batch of them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from cfpairs.arrays import concat_ranges, group_roots
from cfpairs.api import PairStore
from cfpairs.schema import model_input_fields
from cfpairs.store import RegionFeatureReader
from cftrain.labels import SoftTargets, training_labels
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
    pair_kinds: np.ndarray | None = None  # (P,) each pair's kind (edited, edited_premise, ...)
    pair_relations: np.ndarray | None = None  # (P,) "flip" or "keep" (None: every pair flips)

    def keep_pairs(self) -> np.ndarray:
        """(P,) True for the pairs whose edit keeps the label (invariance pairs, store format 3)."""
        if self.pair_relations is None:
            return np.zeros(len(np.asarray(self.pairs).reshape(-1, 2)), bool)
        return np.asarray(self.pair_relations, dtype=object) == "keep"

    def __len__(self) -> int:
        return len(self.targets)

    def rows(self, index) -> "SplitTensors":
        """A new split of the given rows; pairs are kept only when both members are kept."""
        index = np.asarray(index, dtype=np.int64)
        remap = np.full(len(self), -1)
        remap[index] = np.arange(len(index))
        pairs = remap[self.pairs] if len(self.pairs) else self.pairs
        both = (pairs >= 0).all(1) if len(pairs) else np.zeros(0, bool)
        pairs = pairs[both] if len(pairs) else pairs
        kinds = self.pair_kinds[both] if self.pair_kinds is not None and len(both) else self.pair_kinds
        relations = self.pair_relations[both] if self.pair_relations is not None and len(both) else \
            self.pair_relations
        subsets = {k: remap[v][remap[v] >= 0] for k, v in self.subsets.items()}
        t = torch.as_tensor(index)
        return replace(self, inputs={k: v[t] for k, v in self.inputs.items()}, targets=self.targets[t],
                       labels=self.labels[t], is_counterfactual=self.is_counterfactual[t], pairs=pairs,
                       subsets=subsets, pair_kinds=kinds, pair_relations=relations)

    def batch(self, rows) -> dict:
        """Model inputs of `rows`; region stores add `features` (B, R, D) with masked regions zeroed."""
        t = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        out = {k: v[t] for k, v in self.inputs.items()}
        if self.features is not None:
            out["features"] = self.features.read(out["image_row"].numpy(), out["region_mask"].numpy())
        return out


def load_split(store: PairStore, name: str, labels=None) -> SplitTensors:
    """One split of an open store (`cfpairs.open_store`): the model's inputs, targets, pairs, subsets;
    `labels` (a run's `cftrain.labels.Labels`) makes the targets, else the store's label kind's."""
    view = store[name]
    columns = view.examples
    inputs = {f: torch.as_tensor(columns[f]) for f in model_input_fields(store.input_kind)}
    inputs = {f: (v.long() if v.dtype == torch.int32 else v) for f, v in inputs.items()}
    kind = labels if labels is not None else training_labels(store.label_kind)
    targets, labels = kind.targets(columns.__getitem__, len(store.class_names))
    features = RegionFeatures(store.path, store.feature_parts()) if store.regions_info() is not None else None
    return SplitTensors(name, inputs, targets, labels, torch.as_tensor(columns["is_counterfactual"]), view.pairs,
                        dict(view.subsets), features, np.asarray(view.pair_kinds, dtype=object),
                        np.asarray(view.pair_relations, dtype=object))


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


class PairBatches(torch.utils.data.Dataset):
    """Shuffled mini-batches of whole pair groups, about `batch_size` examples each.

    Groups and their edges (in each group's local row order) are laid out flat once, so a
    batch is gathered with a few vectorised index operations whatever the split's size.
    """

    def __init__(self, data: SplitTensors, batch_size: int, seed: int, shard: tuple = (0, 1), whole: bool = False):
        # shard: (rank, world) under torchrun; `whole`: each rank gets the whole batch, owning its share
        self.data, self.shard, self.whole = data, shard, whole
        self.groups = pair_groups(len(data), data.pairs)
        self.batch_size, self.seed = batch_size, seed
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
        keep = np.tile(data.keep_pairs(), 2)
        by_group = owner_of[both[:, 0]] if len(both) else np.zeros(0, np.int64)
        order = np.argsort(by_group, kind="stable")
        self.edges_local = local[both[order]].reshape(-1, 2)
        self.edge_keep = keep[order] if keep.any() else None  # (E,) the edges of keep pairs
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
        """This rank's share of each global batch: its groups; or, `whole`, (every group, its own)."""
        rank, world = self.shard
        return [(groups, groups[rank::world]) if self.whole else groups[rank::world] for groups in self.plan()]

    def __len__(self) -> int:
        return max(1, int(np.ceil(len(self.data) / self.batch_size)))

    def __getitem__(self, item) -> dict:
        """The batch of a sampler's item: a list of groups, or (groups, the groups it owns) under torchrun."""
        return self.make_batch(*item) if isinstance(item, tuple) else self.make_batch(item)

    def make_batch(self, groups: list, owned_groups: list | None = None) -> dict:
        """The batch of these groups ({} when there is none: this rank has no group this step);
        with `owned_groups`, `owned`: (B,) True for their rows (the rows this rank's terms sum over)."""
        if not len(groups):
            return {}
        groups = np.asarray(groups, dtype=np.int64)
        sizes, n_edges = self.group_len[groups], self.edge_len[groups]
        rows = self.group_rows[concat_ranges(self.group_start[groups], sizes)]
        offsets = np.repeat(np.cumsum(sizes) - sizes, n_edges)
        edge_rows = concat_ranges(self.edge_start[groups], n_edges)
        edges = self.edges_local[edge_rows] + offsets[:, None]
        batch = {**self.data.batch(rows), "targets": dense(self.data.targets[torch.as_tensor(rows)]),
                 "edges": torch.as_tensor(edges, dtype=torch.long)}
        if self.edge_keep is not None:  # a store with keep pairs: which edges keep the label
            batch["edge_keep"] = torch.as_tensor(self.edge_keep[edge_rows])
        if self.edge_distance is not None:
            batch["edge_distances"] = self.edge_distance[torch.as_tensor(edge_rows)]
        if owned_groups is not None:
            batch["owned"] = torch.as_tensor(np.repeat(np.isin(groups, owned_groups), sizes))
        return batch

    def __iter__(self):
        return iter(self.loader())

    def loader(self, workers: int = 0) -> torch.utils.data.DataLoader:
        """This epoch's batches from a DataLoader: the sampler draws the groups (one epoch's plan per
        iteration), this dataset gathers them, in `workers` processes (each opens the store itself)."""
        # its own generator: a DataLoader draws its workers' base seed at every epoch, which from the
        # global generator would shift the model's dropout masks
        return torch.utils.data.DataLoader(self, sampler=PairGroupSampler(self), batch_size=None, num_workers=workers,
                                           generator=torch.Generator().manual_seed(self.seed))


class PairGroupSampler(torch.utils.data.Sampler):
    """Each epoch's batches as lists of whole pair groups (about `batch_size` rows each), shuffled by
    the batches' seeded generator; under torchrun, this rank's share of each global batch."""

    def __init__(self, batches: PairBatches):
        self.batches = batches

    def __iter__(self):
        # a generator: the plan is drawn when iteration starts (a DataLoader with workers calls
        # iter() twice and uses the second; drawing at iter() would advance the seeded order twice)
        yield from (self.batches.local_plan() if self.batches.shard[1] > 1 else self.batches.plan())

    def __len__(self) -> int:
        return len(self.batches)
