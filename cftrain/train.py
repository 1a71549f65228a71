"""Training: one step is a function of (model, optimizer, batch); runs write a stable run directory.

RUN_DIR/config.json     every resolved option
RUN_DIR/history.jsonl   one line per epoch: losses, GS term, val metric, seconds
RUN_DIR/metrics.json    metrics of the best epoch on every split (percent)
RUN_DIR/model.pt        best state of every ensemble member (torch.load(weights_only=True))
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cfbuild.errors import UserError
from cfbuild.store import Store
from cftrain.data import PairBatches, SplitTensors, load_split
from cftrain.gs import gs_loss
from cftrain.metrics import METRIC, ensemble_logits, split_metrics
from cftrain.models import load_word_vectors, make_model
from cftrain.presets import RunConfig


def train_step(model, optimizer, batch: dict, config: RunConfig, label_kind: str,
               generator: torch.Generator | None = None) -> dict:
    """One optimisation step on one batch of whole pairs; returns the loss terms."""
    model.train()
    use_gs = config.mode in ("gs", "gs-random") and config.gs_weight > 0
    if hasattr(model, "plain_rnn"):
        model.plain_rnn = use_gs  # GS differentiates twice: keep recurrent layers off cuDNN
    x = model.encode(batch)
    if use_gs and not x.requires_grad:  # the GS space is the raw input (mlp)
        x = x.detach().requires_grad_(True)
    logits = model.head(x, batch)
    task_loss = F.binary_cross_entropy_with_logits(logits, batch["targets"])
    loss, gs_value, gs_rows = task_loss, 0.0, 0
    if use_gs:
        gs_term, stats = gs_loss(x, logits, batch["targets"], batch["edges"], label_kind,
                                 random=config.mode == "gs-random", generator=generator)
        loss = task_loss + config.gs_weight * gs_term
        gs_value, gs_rows = float(gs_term.detach()), stats["rows"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"task_loss": float(task_loss.detach()), "gs": gs_value, "gs_rows": gs_rows}


OPTIMIZERS = {"adadelta": torch.optim.Adadelta, "adam": torch.optim.Adam, "adamax": torch.optim.Adamax}


def make_optimizer(config: RunConfig, params):
    if config.optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {config.optimizer!r} ({', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[config.optimizer]([p for p in params if p.requires_grad], lr=config.lr)


def model_kwargs(config: RunConfig, store: Store, train: SplitTensors) -> dict:
    """Constructor arguments of the run's models (saved in model.pt to rebuild them)."""
    kwargs = {"vocab_size": len(store.vocab or []), "n_outputs": train.targets.shape[1],
              "hidden": list(config.hidden)}
    if "x" in train.inputs:
        kwargs["input_dim"] = int(train.inputs["x"].shape[1])
    if store.regions is not None:
        kwargs["feature_dim"] = int(store.regions["features"].shape[2])
    return kwargs


def build_members(config: RunConfig, store: Store, train: SplitTensors) -> list:
    """`config.ensemble` models, member k seeded with seed + k."""
    kwargs = model_kwargs(config, store, train)
    if config.embeddings:
        if not Path(config.embeddings).is_file():
            raise UserError(f"{config.embeddings}: --embeddings file does not exist")
        kwargs["vectors"], _ = load_word_vectors(config.embeddings, store.vocab)
    members = []
    for k in range(config.ensemble):
        torch.manual_seed(config.seed + k)
        members.append(make_model(config.model, **kwargs))
    return members


def training_rows(train: SplitTensors, mode: str, seed: int) -> SplitTensors:
    """What each mode trains on: originals only, everything, or everything with shuffled labels."""
    if mode == "original":
        return train.rows(np.flatnonzero(~train.is_counterfactual.numpy()))
    if mode == "shuffled":
        perm = torch.as_tensor(np.random.default_rng(seed).permutation(len(train)))
        shuffled = copy.copy(train)
        shuffled.targets, shuffled.labels = train.targets[perm], train.labels[perm]
        return shuffled
    return train


def truncate(data: SplitTensors, max_tokens: int | None) -> SplitTensors:
    if not max_tokens:
        return data
    inputs = dict(data.inputs)
    for key in [k for k in inputs if k.endswith("tokens")]:
        inputs[key] = inputs[key][:, :max_tokens]
        length_key = key.replace("tokens", "length")
        inputs[length_key] = inputs[length_key].clamp(max=max_tokens)
    return replace(data, inputs=inputs)


def fit(config: RunConfig, store: Store, splits: dict, log=None) -> tuple[list, int, list]:
    """Train the ensemble in lockstep; select the epoch by the ensemble's val metric."""
    train = training_rows(splits["train"], config.mode, config.seed)
    members = build_members(config, store, train)
    optimizers = [make_optimizer(config, m.parameters()) for m in members]
    loaders = [PairBatches(train, config.batch_size, config.seed + k) for k in range(len(members))]
    generator = torch.Generator().manual_seed(config.seed)
    best, best_epoch, best_states, history = -1.0, 0, None, []
    metric = METRIC[store.label_kind]
    bar = tqdm(range(1, config.epochs + 1), desc=config.mode, disable=None, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        steps = [train_step(m, o, b, config, store.label_kind, generator)
                 for m, o, loader in zip(members, optimizers, loaders) for b in loader.loader(config.workers)]
        val = split_metrics(ensemble_logits(members, splits["val"]), splits["val"], store.label_kind)["all"][metric]
        line = {"epoch": epoch, "task_loss": float(np.mean([s["task_loss"] for s in steps])),
                "gs": float(np.mean([s["gs"] for s in steps])), "gs_rows": int(sum(s["gs_rows"] for s in steps)),
                f"val_{metric}": val, "seconds": round(time.perf_counter() - start, 3)}
        history.append(line)
        if log:
            log(line)
        bar.set_postfix(val=val)
        if val > best:
            best, best_epoch, best_states = val, epoch, [copy.deepcopy(m.state_dict()) for m in members]
        elif epoch - best_epoch >= config.patience:
            break
    for member, state in zip(members, best_states):
        member.load_state_dict(state)
    return members, best_epoch, history


def chance_metrics(splits: dict, seed: int, label_kind: str) -> dict:
    """Uniform random predictions (random scores for mAP; a uniformly drawn class otherwise)."""
    generator = torch.Generator().manual_seed(seed)
    return {name: split_metrics(torch.rand(data.targets.shape, generator=generator) - 0.5, data, label_kind)
            for name, data in splits.items()}


def load_splits(store: Store, config: RunConfig) -> dict:
    missing = [s for s in ("train", "val") if s not in store.splits]
    if missing:
        raise UserError(f"{store.path}: training needs splits train and val; missing {', '.join(missing)}")
    splits = {name: truncate(load_split(store, name), config.max_tokens) for name in store.splits}
    if config.answer_types:
        splits = {name: only_answer_types(data, config.answer_types, store.path) for name, data in splits.items()}
    return splits


def only_answer_types(data: SplitTensors, kinds: list, path) -> SplitTensors:
    """The rows whose answer_type is in `kinds` (VQA's weak-baseline setting: 'other' only)."""
    if data.features is None:
        raise UserError(f"{path}: --answer-types needs a VQA store (regions with answer_type)")
    picked = [data.subsets[k] for k in kinds if k in data.subsets]
    rows = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
    if data.name in ("train", "val") and not len(rows):
        types = sorted(k for k in data.subsets if k not in ("hard_edited",))
        raise UserError(f"{path}: split {data.name} has no rows of answer type {', '.join(kinds)} "
                        f"(it has: {', '.join(types)})")
    return data.rows(rows)


def write_json_atomic(path: Path, value) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(fd, "w") as fh:
        json.dump(value, fh, indent=2)
    os.replace(tmp, path)


def run(store_path, out_dir, config: RunConfig, quiet: bool = False) -> dict:
    """Train (or, for mode chance, draw) and write the run directory; returns metrics.json's content."""
    torch.set_num_threads(config.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with Store(store_path) as store:
        splits = load_splits(store, config)
        metrics = {"task": store.task, "mode": config.mode, "model": config.model, "ensemble": config.ensemble,
                   "seed": config.seed, "store": str(store_path), "store_digest": store.digest}
        write_json_atomic(out_dir / "config.json", {**config.to_dict(), "store": str(store_path)})
        if config.mode == "chance":
            metrics.update(best_epoch=0, splits=chance_metrics(splits, config.seed, store.label_kind))
        else:
            with open(out_dir / "history.jsonl", "w") as history:
                def log(line):
                    history.write(json.dumps(line) + "\n")
                    history.flush()  # readable while training runs

                members, best_epoch, _ = fit(config, store, splits, log=log)
            scores = {name: split_metrics(ensemble_logits(members, data), data, store.label_kind)
                      for name, data in splits.items()}
            metrics.update(best_epoch=best_epoch, splits=scores)
            torch.save({"members": [m.state_dict() for m in members], "model": config.model,
                        "kwargs": model_kwargs(config, store, splits["train"])}, out_dir / "model.pt")
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics
