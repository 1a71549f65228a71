"""Loading a store for a run or an evaluation: the device, the checks (and the content digest it
verified), every split as tensors, truncated and filtered as the run's options say. Shared by
training (`cftrain.train`) and evaluation (`cftrain.evaluate`), which import it, not each other."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import torch

from cfpairs.api import PairStore
from cfpairs.check import check_store, upgrade_note
from cfpairs.progress import note
from cfpairs.errors import UserError
from cfpairs.store import Store
from cftrain.data import SplitTensors, load_split
from cftrain.folds import fold_splits
from cftrain.presets import RunConfig


def resolve_device(name: str) -> torch.device:
    """cpu, cuda, or auto (cuda when available); under torchrun, this process's GPU (LOCAL_RANK)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


def truncate(data: SplitTensors, max_tokens: int | None) -> SplitTensors:
    if not max_tokens:
        return data
    inputs = dict(data.inputs)
    for key in [k for k in inputs if k.endswith("tokens")]:
        inputs[key] = inputs[key][:, :max_tokens]
        length_key = key.replace("tokens", "length")
        inputs[length_key] = inputs[length_key].clamp(max=max_tokens)
    return replace(data, inputs=inputs)


def load_splits(store: PairStore, config: RunConfig, training: bool = True, labels=None) -> dict:
    """Every split of the store, truncated and filtered as the run's options say (run and eval alike);
    `labels`: the run's `cftrain.labels.Labels`, which makes the targets (default: the store's kind's)."""
    missing = [s for s in ("train", "val") if s not in store.splits]
    if training and missing:
        raise UserError(f"{store.path}: training needs splits train and val; missing {', '.join(missing)}")
    splits = {name: truncate(load_split(store, name, labels), config.get("max_tokens")) for name in store.splits}
    if config.subsets:
        splits = {name: only_subsets(data, config.subsets, store.path, training) for name, data in splits.items()}
    if training and config.get("folds"):
        splits = fold_splits(splits, config.folds, config.get("fold"), config.get("fold_seed") or 0)
    return splits


def only_subsets(data: SplitTensors, names: list, path, training: bool = True) -> SplitTensors:
    """The rows of the named store subsets (e.g. VQA's answer_other: the paper's weak-baseline setting)."""
    picked = [data.subsets[k] for k in names if k in data.subsets]
    rows = np.unique(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
    if training and data.name in ("train", "val") and not len(rows):
        have = ", ".join(sorted(data.subsets)) or "none"
        raise UserError(f"--subsets {','.join(names)}: split {data.name} of {path} has no rows in them "
                        f"(its subsets: {have})")
    return data.rows(rows)


def open_store(store_path, verify: bool = False, check: bool = True, allow_external: bool = False) -> PairStore:
    """The store through the public reader, after the checks of `cfbuild verify` that read no
    features (with `verify`, the content digest too): a damaged store is a one-line error before
    training, never mid-run. `allow_external`: region features in other files may be read."""
    return open_verified(store_path, verify, check, allow_external)[0]


def open_verified(store_path, verify: bool = False, check: bool = True, allow_external: bool = False,
                  verified: str | None = None) -> tuple[PairStore, str | None]:
    """(the store, the content digest verified as it was loaded, or None). Text and vector stores
    are always verified (their whole content is loaded anyway: the digest costs about 1% of an
    IMDb run, bench/verify_cost.py); region stores, whose features may be gigabytes, only with
    `verify`, or when the caller `verified` them already (a campaign, once for all its runs). A
    mismatch is a one-line error before training."""
    with Store(store_path, allow_external) as peek:
        regions, claimed = peek.input_kind == "regions", peek.digest
        older = upgrade_note(peek)
    if older:  # a format-1 store trains, but its digest does not cover its attributes: said
        note(older)
    if regions and verified is not None and verified == claimed and not verify:
        return PairStore(store_path, check=False, allow_external=allow_external), verified
    verified = None
    if verify or not regions:
        verified = check_store(store_path, digest=True, allow_external=allow_external)
    elif check:
        check_store(store_path, allow_external=allow_external)
    return PairStore(store_path, check=False, allow_external=allow_external), verified
