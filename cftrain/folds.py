"""K-fold selection over train+val (`cftrain sweep --select kfold:K`).

A small val split overstates differences between trials (CAD IMDb's 245 pairs chose a GS preset
whose lead did not hold on the test split). Here train and val are pooled and their pair groups
(an original with all its edits: rows of a pair never straddle two folds) cut into K folds by a
seeded permutation; a run with `fold=f` trains on the other folds and selects its epoch on fold f,
and a run with `folds=K` but no fold trains on all of train+val for a fixed number of epochs (the
chosen trial, retrained). Test splits are never touched.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from cfpairs.errors import UserError
from cftrain.data import SplitTensors, pair_groups


def _pad_to(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Token matrices of two splits padded to one width (token 0 is the padding)."""
    if tensor.dim() < 2 or tensor.shape[1] == width:
        return tensor
    return torch.nn.functional.pad(tensor, (0, width - tensor.shape[1]))


def _cat_targets(a, b):
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])
    width = max(a.index.shape[1], b.index.shape[1])  # SoftTargets: (N, K) answers, K per split
    index = torch.cat([torch.nn.functional.pad(t.index, (0, width - t.index.shape[1]), value=-1) for t in (a, b)])
    score = torch.cat([torch.nn.functional.pad(t.score, (0, width - t.score.shape[1])) for t in (a, b)])
    return type(a)(index, score, a.n_classes)


def concat_splits(a: SplitTensors, b: SplitTensors, name: str) -> SplitTensors:
    """The rows of `a` then `b` as one split: pairs, pair kinds, relations and subsets re-indexed."""
    inputs = {}
    for field, tensor in a.inputs.items():
        other = b.inputs[field]
        width = max(tensor.shape[1], other.shape[1]) if tensor.dim() > 1 else None
        inputs[field] = torch.cat([_pad_to(tensor, width), _pad_to(other, width)]) if width else \
            torch.cat([tensor, other])
    kinds = None if a.pair_kinds is None or b.pair_kinds is None else np.concatenate([a.pair_kinds, b.pair_kinds])
    relations = None if a.pair_relations is None and b.pair_relations is None else np.concatenate(
        [_relations_of(a), _relations_of(b)])
    pairs = np.concatenate([np.asarray(a.pairs, np.int64).reshape(-1, 2),
                            np.asarray(b.pairs, np.int64).reshape(-1, 2) + len(a)])
    subsets = {k: np.concatenate([np.asarray(a.subsets.get(k, []), np.int64),
                                  np.asarray(b.subsets.get(k, []), np.int64) + len(a)])
               for k in dict.fromkeys([*a.subsets, *b.subsets])}
    return replace(a, name=name, inputs=inputs, targets=_cat_targets(a.targets, b.targets),
                   labels=torch.cat([a.labels, b.labels]),
                   is_counterfactual=torch.cat([a.is_counterfactual, b.is_counterfactual]),
                   pairs=pairs, subsets=subsets, pair_kinds=kinds, pair_relations=relations)


def _relations_of(split: SplitTensors) -> np.ndarray:
    """(P,) a split's pair relations (a split without them: every pair flips)."""
    if split.pair_relations is not None:
        return np.asarray(split.pair_relations, dtype=object)
    return np.full(len(np.asarray(split.pairs).reshape(-1, 2)), "flip", dtype=object)


def fold_of_groups(groups: int, folds: int, seed: int) -> np.ndarray:
    """(G,) the fold of each pair group: a seeded permutation dealt round-robin (sizes differ by <= 1)."""
    if groups < folds:
        raise UserError(f"k-fold selection: {folds} folds need at least {folds} pair groups in train+val, "
                        f"found {groups}")
    out = np.empty(groups, np.int64)
    out[np.random.default_rng(seed).permutation(groups)] = np.arange(groups) % folds
    return out


def fold_splits(splits: dict, folds: int, fold: int | None, seed: int) -> dict:
    """`splits` with train and val pooled: with `fold`, train = the other folds' groups and val =
    fold `fold`'s; without, train = all of them and no val (a refit on train+val)."""
    if fold is not None and not 0 <= fold < folds:
        raise UserError(f"fold {fold}: must lie in 0..{folds - 1} (folds={folds})")
    pooled = concat_splits(splits["train"], splits["val"], "train")
    groups = pair_groups(len(pooled), pooled.pairs)
    rest = {k: v for k, v in splits.items() if k not in ("train", "val")}
    if fold is None:
        return {"train": pooled, **rest}
    assigned = fold_of_groups(len(groups), folds, seed)
    held = np.sort(np.concatenate([g for g, f in zip(groups, assigned) if f == fold]))
    kept = np.sort(np.concatenate([g for g, f in zip(groups, assigned) if f != fold]))
    return {"train": pooled.rows(kept), "val": replace(pooled.rows(held), name="val"), **rest}
