"""Training: `fit` builds the ensemble (`cftrain.ensemble`) and calls the method's `step` on every
batch; `run` writes a run directory (`cftrain.rundir`). What a mode trains on and how it steps is
its method's (`cftrain.methods`); the loss and metric are the label kind's (`cftrain.labels`)."""

from __future__ import annotations

import copy
import math
import os
import tempfile
import time

import numpy as np
import torch

from cfpairs.errors import UserError
from cfpairs.outputs import staged
from cfpairs.progress import Progress, stop_if_requested
from cfpairs.api import PairStore
from cftrain import distributed, optim
from cftrain.data import PairBatches, SplitTensors, group_subset, load_split, to_device
from cftrain.ensemble import Ensemble, Single, checked_on, make_ensemble
from cftrain.columns import column_values
from cftrain.evaluate import alignments, evaluate, scored, signature
from cftrain.labels import Labels, training_labels
from cftrain.methods import method
from cftrain.step import forward
from cftrain.metrics import ensemble_logits, split_metrics
from cftrain.models import PairModel, build_model
from cftrain.parts import RunParts, model_kwargs  # noqa: F401  (model_kwargs: re-exported)
from cftrain import plots
from cftrain.presets import RunConfig
from cftrain.rundir import RunDir
from cftrain.runtime import At, Run
from cftrain.scores import kept_scores
from cftrain.vectors import describe, load_vectors
from cftrain.loading import load_splits, open_verified, resolve_device
from cftrain.loading import open_store, truncate  # noqa: F401  (re-exported: the trainer's readers)


def make_optimizer(config: RunConfig, params):
    return optim.make_optimizer(config, params)


def train_step(model, optimizer, batch: dict, config: RunConfig, kind, generator: torch.Generator | None = None) -> dict:
    """One step of `config.mode` on one batch, for a model (an ensemble of one) or an Ensemble, with
    `optimizer` (a method built for this one step: for checks of the default step);
    `kind`: the store's label kind (its name or its `cftrain.labels.Labels`)."""
    ensemble = model if isinstance(model, Ensemble) else Single(model)
    labels = kind if isinstance(kind, Labels) else training_labels(kind, config.loss, config)
    device = next((v.device for v in batch.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
    run = Run(config, ensemble, labels, device, generator or torch.Generator(), distributed.current(),
              make_optimizer=lambda params: optimizer)
    return method(config.mode)(run).step(batch, At(1, 1))


def checked_labels(config: RunConfig, label_kind: str) -> Labels:
    """The loss the store's label kind trains with under `config`, refused (UserError) when it or
    the mode's options do not fit those labels (a campaign's check of its runs before any work)."""
    labels = training_labels(label_kind, config.loss, config)
    method(config.mode).check_labels(config, labels)
    return labels


def memory_needed(parts: RunParts) -> int:
    """Bytes the ensemble's training needs, about: each member's learned parameters four times
    (weights, gradients, two optimizer accumulators), frozen ones once, and activations of a batch
    as wide as the model's widest layer or input."""
    config, kwargs = parts.config, parts.model_kwargs
    with torch.device("meta"):
        if config.get("embeddings") and "vectors" not in kwargs and "vocab_size" in kwargs:
            kwargs = {**kwargs, "vectors": torch.empty(kwargs["vocab_size"], 300)}  # frozen; the widest we ship
        member = build_model(parts.model, **kwargs)
    learned = sum(p.numel() for p in member.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in member.parameters() if not p.requires_grad)
    layers = [m.out_features for m in member.modules() if isinstance(m, torch.nn.Linear)]
    widest = max([*layers, kwargs.get("input_dim", 0), kwargs.get("feature_dim", 0), 1])
    activations = config.batch_size * widest * 8
    return 4 * (config.ensemble * (4 * learned + activations) + frozen)


def memory_available(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(parts: RunParts, device: torch.device) -> None:
    """Refused before any work when the ensemble could not fit in memory, with the estimate."""
    config = parts.config
    need, have = memory_needed(parts), memory_available(device)
    if need > have:
        sizes = ", ".join(f"{k} {v}" for k, v in (("--ensemble", config.ensemble if config.ensemble > 1 else ""),
                                                   ("--batch-size", config.batch_size if config.batch_size > 1024 else ""),
                                                   ("--hidden", ",".join(map(str, config.get("hidden", [])))))
                          if v != "") or f"--model {config.model}"
        raise UserError(f"{sizes}: model {config.model} would need about {_bytes(need)} of memory to train "
                        f"(weights, gradients, optimizer state, a batch's activations); {device.type} has {_bytes(have)}")


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return ""


def sparse_pays(config: RunConfig, optimizer: optim.OptimizerSpec, train: SplitTensors, vocab_size: int) -> bool:
    """Sparse embedding gradients: only where the optimizer's result stays exact, not under torchrun
    (one dense all-reduce), and only where a batch's tokens number at most the rows of the
    embedding tables (the vocabulary times the ensemble, whose tables are fused). Measured on IMDb
    (whole reviews, ~7,400 tokens a batch of 32; 2-epoch fits, GS): one 20,002-row table 1.8x
    faster sparse, six fused tables 5x faster sparse."""
    if not optimizer.sparse_ok or distributed.current() is not None or not vocab_size:
        return False
    lengths = [v.float().mean() for k, v in train.inputs.items() if k.endswith("length")]
    return bool(lengths) and config.batch_size * float(sum(lengths)) <= vocab_size * config.ensemble


def build_members(parts: RunParts, store: PairStore, sparse: bool = False, train: SplitTensors | None = None) -> list:
    """`config.ensemble` models, member k seeded with seed + k, each prepared on `train` (the rows
    the method trains on; default: the store's train split) when its model keeps statistics of them."""
    config = parts.config
    kwargs = dict(parts.model_kwargs, sparse=sparse)  # not saved in model.pt: the state is the same either way
    if config.get("embeddings"):
        kwargs["vectors"], _ = load_vectors(config.embeddings, store.vocab)
    members, shared = [], {}
    with Progress(config.ensemble, f"{store.task} {config.mode}: building members", unit="models") as bar:
        for k in range(config.ensemble):
            torch.manual_seed(config.seed + k)
            member = build_model(parts.model, **kwargs)
            if type(member).prepare is not PairModel.prepare:
                train = train if train is not None else load_split(store, "train")
                member.prepare(train, shared)
            members.append(member)
            bar.update()
    return members


def fit(parts: RunParts, store: PairStore, splits: dict, log=None, device="cpu") -> tuple[list, int, list]:
    """Train the ensemble in lockstep; select the epoch by the ensemble's val metric. The method is
    built once for the run (it owns its optimizers and state) and steps every batch; under torchrun
    each process takes its share of every batch (the whole batch, owning a share of its rows, for a
    method whose terms relate rows of different pair groups)."""
    config, trainer, labels = parts.config, parts.method, parts.labels
    subset = group_subset(splits["train"], config.fraction,
                          config.seed if config.fraction_seed is None else config.fraction_seed)
    train = trainer.training_rows(subset, config.seed)
    trainer.check_pairs(len(train.pairs), f"split train of {store.path}" + (
        f" (--fraction {config.fraction})" if config.fraction < 1 else "") + (
        f" (--subsets {','.join(config.subsets)})" if config.subsets else ""))
    sparse = sparse_pays(config, parts.optimizer, train, parts.model_kwargs["vocab_size"])
    members = [m.to(device) for m in build_members(parts, store, sparse, train)]
    ensemble = make_ensemble(members).to(device)
    context = distributed.current()
    shard = (context.rank, context.world) if context else (0, 1)
    loader = PairBatches(train, config.batch_size, config.seed, shard, whole=trainer.couples_rows)
    generator = torch.Generator().manual_seed(config.seed)
    best, best_epoch, best_state, history = -math.inf, 0, None, []
    selecting = "val" in splits  # else a refit on train+val (k-fold selection): every epoch, the last kept
    stepper, step = None, 0
    bar = Progress(config.epochs, f"{store.task} {config.mode}", unit="epochs", every_update=True)
    for epoch in range(1, config.epochs + 1):
        start, steps = time.perf_counter(), []
        for batch in loader.loader(config.workers):
            stop_if_requested()
            batch = to_device(batch, device)
            if stepper is None:  # the generic fused form is checked on the first batch
                ensemble = checked_on(ensemble, batch, trainer.needs_input_gradient(config), forward).to(device)
                stepper = trainer(Run(config, ensemble, labels, torch.device(device), generator, context,
                                      make_optimizer=parts.make_optimizer))
            step += 1
            steps.append(stepper.step(batch, At(epoch, step)))
        val = split_metrics(ensemble_logits([ensemble], splits["val"], device), splits["val"],
                            labels)["all"][labels.metric] if selecting else None
        line = epoch_line(epoch, steps, labels.metric, val, start, store, selecting)
        history.append(line)
        if log:
            log(line)
        bar.set_postfix(val=val, loss=round(line["task_loss"], 4))
        bar.update()
        if not selecting:
            best_epoch = epoch
        elif val > best:
            best, best_epoch, best_state = val, epoch, copy.deepcopy(ensemble.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    bar.close()
    if best_state is not None:
        ensemble.load_state_dict(best_state)
    return ensemble.unfuse(), best_epoch, history


def epoch_line(epoch: int, steps: list, metric: str, val, start: float, store: PairStore,
               selecting: bool = True) -> dict:
    """One history.jsonl line: the task loss, what the method reports (each term's mean over the
    epoch's steps, its `_rows` summed), the val metric, seconds; a diverged loss or an undefined
    val metric stops training by name."""
    if val is None and selecting:
        raise UserError(f"{store.path}: the val {metric} is undefined (e.g. no positive label in val), "
                        "so no epoch can be selected")
    losses = [s["task_loss"] for s in steps if s["task_loss"] is not None]
    line = {"epoch": epoch, "task_loss": float(np.mean(losses))}
    for key in sorted({k for s in steps for k in s} - {"task_loss"}):
        found = [s[key] for s in steps if s.get(key) is not None]
        line[key] = int(sum(found)) if key.endswith("_rows") else float(np.mean(found)) if found else None
    line.update({f"val_{metric}": val, "seconds": round(time.perf_counter() - start, 3)})
    if not all(math.isfinite(v) for v in line.values() if isinstance(v, float)):
        terms = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in line.items() if isinstance(v, float)
                          and k not in ("seconds", f"val_{metric}"))
        raise UserError(f"training diverged at epoch {epoch} ({terms}): lower --lr or the method's weight")
    return line


def run(store_path, out_dir, config: RunConfig, force: bool = False, verify: bool = False,
        job: dict | None = None) -> dict:
    """Train (or, for a method that trains nothing, draw) into a temporary directory beside
    `out_dir`, renamed to it when complete; returns metrics.json's content. `job`: what a
    campaign knows this run as (a launcher starting runs as commands passes it on)."""
    context = distributed.start(resolve_device(config.device))
    try:
        if context is not None and not context.is_main:  # rank 0 alone writes the run directory
            with tempfile.TemporaryDirectory() as tmp:
                return run_into(tmp, store_path, config, verify, job=job)
        with staged(out_dir, "run", force, inputs=[store_path]) as tmp:
            return run_into(tmp, store_path, config, verify, job=job)
    finally:
        distributed.stop()


def run_into(out_dir, store_path, config: RunConfig, verify: bool = False, check: bool = True,
             job: dict | None = None, verified: str | None = None) -> dict:
    """The run directory's files written into `out_dir` (an existing, empty folder). `check=False`:
    the caller checked the store already (a table or a curve checks it once for all its runs);
    `verified`: the digest it verified then. `job`: what a campaign (table, sweep, curve) knows
    this run as, kept in config.json."""
    torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    rundir = RunDir(out_dir)
    store, verified = open_verified(store_path, verify, check, config.allow_external, verified)
    with store:
        parts = RunParts.of(config, store)  # every stage below takes these objects
        trainer, labels = parts.method, parts.labels
        if trainer.trains:
            check_memory(parts, device)
        splits = load_splits(store, config, labels=labels)
        checked = {"store_digest": verified or store.digest, "store_verified": verified is not None}
        metrics = {"task": store.task, "mode": config.mode, "model": config.model, "ensemble": config.ensemble,
                   "seed": config.seed, "store": str(store_path), **checked, "metric": labels.metric}
        rundir.write_config({**config.to_dict(), "store": str(store_path), **checked,
                             "store_signature": signature(store), "job": job or {},
                             "embeddings_source": describe(config.embeddings) if config.get("embeddings") else None})
        if not trainer.trains:
            drawn = trainer.predict(splits, config.seed)
            kept = {name: kept_scores(drawn[name][None], data, labels.name) for name, data in splits.items()}
            found, consistency = scored(drawn, splits, labels)
            metrics.update(best_epoch=0, splits=found, consistency=consistency)
        else:
            with rundir.history() as log:
                members, best_epoch, history = fit(parts, store, splits, log=log, device=device)
            found, consistency, kept = evaluate(members, splits, labels, device)
            metrics.update(best_epoch=best_epoch, splits=found, consistency=consistency,
                           alignment=alignments(members, splits, labels, device))
            rundir.save_model(members, config.model, parts.model_kwargs)
            plots.history_png(history, rundir.path / "history.png", labels.metric,
                        f"{store.task} {config.mode}, {config.ensemble} member(s), best epoch {best_epoch}")
        metrics["columns"] = column_values(kept, labels)
        rundir.write_scores(kept, len(store.class_names))
    rundir.write_metrics(metrics)
    return metrics
