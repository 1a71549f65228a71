"""Training: one step is a function of (model, optimizer, batch); `run` writes a run directory
(`cftrain.rundir`). What a mode trains on and adds to the loss is its method's (`cftrain.methods`)."""

from __future__ import annotations

import copy
import hashlib
import os
import math
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from cfpairs.errors import UserError
from cfpairs.check import check_store
from cfpairs.label_kinds import label_kind
from cfpairs.progress import Progress
from cfpairs.outputs import staged
from cfpairs.store import Store
from cftrain.data import PairBatches, SplitTensors, group_subset, load_split, to_device
from cftrain import distributed, optim
from cftrain.alignment import split_alignment
from cftrain.fused import fuse
from cftrain.methods import Method, method
from cftrain.metrics import ensemble_logits, split_metrics
from cftrain.models import make_model
from cftrain.vectors import describe, load_vectors
from cftrain.plots import history_png
from cftrain.presets import RunConfig, validate
from cftrain.rundir import RunDir


def train_step(model, optimizer, batch: dict, config: RunConfig, kind: str,
               generator: torch.Generator | None = None) -> dict:
    """One optimisation step on one batch of whole pairs (already on the model's device)."""
    trainer = method(config.mode)
    model.train()
    context = distributed.current()
    if "targets" not in batch:  # torchrun: this process has no group in this global batch
        return _empty_step(model, optimizer, context)
    double = trainer.needs_input_gradient(config)
    model.set_double_backward(double)
    x = model.encode(batch)
    found = model.data_head(x, batch) if double and not x.requires_grad else None  # GS space is data
    if found is not None:  # ... read through linear maps: GS computed in their output space
        logits, space = found
        if x is batch.get("x"):
            space.known = batch.get("edge_distances")  # |x_j - x_i| of the batch's edges, from the loader
    else:
        space = None
        if double and not x.requires_grad:
            x = x.detach().requires_grad_(True)
        logits = model.head(x, batch)
    targets = batch["targets"]
    if logits.dim() == 3:  # a fused ensemble (B, N, C): the sum of each member's own mean loss
        per_member = F.binary_cross_entropy_with_logits(logits, targets[:, None, :].expand_as(logits),
                                                        reduction="none").mean(dim=(0, 2))
        task_loss, reported = per_member.sum(), float(per_member.detach().mean())
    else:
        task_loss = F.binary_cross_entropy_with_logits(logits, targets)
        reported = float(task_loss.detach())
    task_loss = task_loss * batch.get("share", 1.0)  # torchrun: this process's share of the global batch
    extra, stats = trainer.extra_loss(x, logits, batch, config, kind, generator, **({} if space is None else
                                                                                     {"space": space}))
    loss = task_loss if extra is None else task_loss + extra
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if context is not None:
        context.sum_gradients(model.parameters())
    optimizer.step()
    return {"task_loss": reported, "gs": stats.get("gs", 0.0), "gs_rows": stats.get("gs_rows", 0)}


def _empty_step(model, optimizer, context) -> dict:
    """Take part in the gradient sum with zeros, then step like every other process."""
    optimizer.zero_grad(set_to_none=True)
    context.sum_gradients(model.parameters())
    optimizer.step()
    return {"task_loss": None, "gs": 0.0, "gs_rows": 0}


def make_optimizer(config: RunConfig, params):
    return optim.make_optimizer(config.optimizer, params, config.lr, config.rho, config.eps)


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


def model_kwargs(config: RunConfig, store: Store, train: SplitTensors) -> dict:
    """Constructor arguments of the run's models (saved in model.pt to rebuild them)."""
    kwargs = {"vocab_size": len(store.vocab or []), "n_outputs": train.targets.shape[1],
              "hidden": list(config.hidden)}
    if "x" in train.inputs:
        kwargs["input_dim"] = int(train.inputs["x"].shape[1])
    regions = store.regions_info()
    if regions is not None:
        kwargs["feature_dim"] = int(regions.features_shape[2])
    return kwargs


def sparse_pays(config: RunConfig, train: SplitTensors, vocab_size: int) -> bool:
    """Sparse embedding gradients: only where the optimizer's result stays exact, not under torchrun
    (one dense all-reduce), and only where a batch's tokens number at most the rows of the
    embedding tables (the vocabulary times the ensemble, whose tables are fused). Measured on IMDb
    (whole reviews, ~7,400 tokens a batch of 32; 2-epoch fits, GS): one 20,002-row table 1.8x
    faster sparse, six fused tables 5x faster sparse."""
    if config.optimizer not in optim.SPARSE_OK or distributed.current() is not None or not vocab_size:
        return False
    lengths = [v.float().mean() for k, v in train.inputs.items() if k.endswith("length")]
    return bool(lengths) and config.batch_size * float(sum(lengths)) <= vocab_size * config.ensemble


def build_members(config: RunConfig, store: Store, kwargs: dict, sparse: bool = False) -> list:
    """`config.ensemble` models, member k seeded with seed + k."""
    kwargs = dict(kwargs, sparse=sparse)  # not saved in model.pt: the state is the same either way
    if config.embeddings:
        kwargs["vectors"], _ = load_vectors(config.embeddings, store.vocab)
    members = []
    with Progress(config.ensemble, f"{store.task} {config.mode}: building members", unit="models") as bar:
        for k in range(config.ensemble):
            torch.manual_seed(config.seed + k)
            member = make_model(config.model, **kwargs)
            init_embeddings(member, config)
            members.append(member)
            bar.update()
    return members


def init_embeddings(model, config: RunConfig) -> None:
    """Learned word embeddings drawn as `--embed-init` says (torch's N(0, 1) by default; Keras draws
    U(-0.05, 0.05)); the padding row stays zero. Frozen pretrained vectors are left alone."""
    embed = getattr(model, "embed", None)
    if not isinstance(embed, torch.nn.Embedding) or not embed.weight.requires_grad:
        return
    if config.embed_init == "normal" and config.embed_scale is None:
        return  # torch's own initialisation, as drawn by the constructor
    with torch.no_grad():
        if config.embed_init == "uniform":
            scale = 0.05 if config.embed_scale is None else config.embed_scale
            embed.weight.uniform_(-scale, scale)
        else:
            embed.weight.normal_(0.0, config.embed_scale)
        if embed.padding_idx is not None:
            embed.weight[embed.padding_idx].zero_()


def truncate(data: SplitTensors, max_tokens: int | None) -> SplitTensors:
    if not max_tokens:
        return data
    inputs = dict(data.inputs)
    for key in [k for k in inputs if k.endswith("tokens")]:
        inputs[key] = inputs[key][:, :max_tokens]
        length_key = key.replace("tokens", "length")
        inputs[length_key] = inputs[length_key].clamp(max=max_tokens)
    return replace(data, inputs=inputs)


def fit(config: RunConfig, store: Store, splits: dict, log=None, device="cpu") -> tuple[list, int, list]:
    """Train the ensemble in lockstep; select the epoch by the ensemble's val metric."""
    trainer = method(config.mode)
    subset = group_subset(splits["train"], config.fraction,
                          config.seed if config.fraction_seed is None else config.fraction_seed)
    train = trainer.training_rows(subset, config.seed)
    kwargs = model_kwargs(config, store, train)
    sparse = sparse_pays(config, train, kwargs["vocab_size"])
    members = [m.to(device) for m in build_members(config, store, kwargs, sparse)]
    fused = fuse(config.model, members)  # members in one pass where the model has a fused form
    trained = [fused.to(device)] if fused is not None else members
    optimizers = [make_optimizer(config, m.parameters()) for m in trained]
    context = distributed.current()
    shard = (context.rank, context.world) if context else (0, 1)
    loader = PairBatches(train, config.batch_size, config.seed, shard)  # one batch order for every member
    generator = torch.Generator().manual_seed(config.seed)
    best, best_epoch, best_states, history = -math.inf, 0, None, []
    kind = store.label_kind  # an HDF5 attribute: read once, not per step
    metric = label_kind(kind).metric
    bar = Progress(config.epochs, f"{store.task} {config.mode}", unit="epochs", every_update=True)
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        steps = []
        for batch in loader.loader(config.workers):
            batch = to_device(batch, device)
            steps += [train_step(m, o, batch, config, kind, generator) for m, o in zip(trained, optimizers)]
        val = split_metrics(ensemble_logits(trained, splits["val"], device), splits["val"], kind)["all"][metric]
        if val is None:
            raise UserError(f"{store.path}: the val {metric} is undefined (e.g. no positive label in val), "
                            "so no epoch can be selected")
        line = {"epoch": epoch, "task_loss": float(np.mean([s["task_loss"] for s in steps
                                                              if s["task_loss"] is not None])),
                "gs": float(np.mean([s["gs"] for s in steps])), "gs_rows": int(sum(s["gs_rows"] for s in steps)),
                f"val_{metric}": val, "seconds": round(time.perf_counter() - start, 3)}
        if not (math.isfinite(line["task_loss"]) and math.isfinite(line["gs"])):
            raise UserError(f"training diverged at epoch {epoch} (task loss {line['task_loss']}, GS term "
                            f"{line['gs']}): lower --lr or --gs-weight")
        history.append(line)
        if log:
            log(line)
        bar.set_postfix(val=val, loss=round(line["task_loss"], 4))
        bar.update()
        if val > best:
            best, best_epoch, best_states = val, epoch, [copy.deepcopy(m.state_dict()) for m in trained]
        elif epoch - best_epoch >= config.patience:
            break
    bar.close()
    for model, state in zip(trained, best_states):
        model.load_state_dict(state)
    return (fused.unfuse() if fused is not None else members), best_epoch, history


def load_splits(store: Store, config: RunConfig, training: bool = True) -> dict:
    """Every split of the store, truncated and filtered as the run's options say (run and eval alike)."""
    missing = [s for s in ("train", "val") if s not in store.splits]
    if training and missing:
        raise UserError(f"{store.path}: training needs splits train and val; missing {', '.join(missing)}")
    splits = {name: truncate(load_split(store, name), config.max_tokens) for name in store.splits}
    if config.answer_types:
        splits = {name: only_answer_types(data, config.answer_types, store.path, training)
                  for name, data in splits.items()}
    return splits


def only_answer_types(data: SplitTensors, kinds: list, path, training: bool = True) -> SplitTensors:
    """The rows whose answer_type is in `kinds` (VQA's weak-baseline setting: 'other' only)."""
    if data.features is None:
        raise UserError(f"{path}: --answer-types needs a VQA store (regions with answer_type)")
    picked = [data.subsets[k] for k in kinds if k in data.subsets]
    rows = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
    if training and data.name in ("train", "val") and not len(rows):
        types = sorted(k for k in data.subsets if k not in ("hard_edited",))
        raise UserError(f"{path}: split {data.name} has no rows of answer type {', '.join(kinds)} "
                        f"(it has: {', '.join(types)})")
    return data.rows(rows)


def alignments(members: list, splits: dict, kind: str, device="cpu") -> dict:
    """Gradient alignment on every split with pairs (cftrain.alignment)."""
    out = {name: split_alignment(members, data, kind, device) for name, data in splits.items()}
    return {name: value for name, value in out.items() if value is not None}


def evaluate(members: list, splits: dict, kind: str, device="cpu") -> dict:
    return {name: split_metrics(ensemble_logits(members, data, device), data, kind) for name, data in splits.items()}


def open_store(store_path, verify: bool = False, check: bool = True) -> Store:
    """The store, after the checks of `cfbuild verify` that read no features (with `verify`, the
    content digest too): a damaged store is a one-line error before training, never mid-run."""
    if check or verify:
        check_store(store_path, digest=verify)
    return Store(store_path)


def run(store_path, out_dir, config: RunConfig, force: bool = False, verify: bool = False) -> dict:
    """Train (or, for a method that trains nothing, draw) into a temporary directory beside
    `out_dir`, renamed to it when complete; returns metrics.json's content."""
    context = distributed.start(resolve_device(config.device))
    try:
        if context is not None and not context.is_main:  # rank 0 alone writes the run directory
            with tempfile.TemporaryDirectory() as tmp:
                return run_into(tmp, store_path, config, verify)
        with staged(out_dir, "run", force, inputs=[store_path]) as tmp:
            return run_into(tmp, store_path, config, verify)
    finally:
        distributed.stop()


def run_into(out_dir, store_path, config: RunConfig, verify: bool = False, check: bool = True,
             job: dict | None = None) -> dict:
    """The run directory's files written into `out_dir` (an existing, empty folder). `check=False`:
    the caller checked the store already (a table or a curve checks it once for all its runs).
    `job`: what a campaign (table, sweep, curve) knows this run as, kept in config.json."""
    torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    rundir = RunDir(out_dir)
    trainer: Method = method(config.mode)
    with open_store(store_path, verify, check) as store:
        validate(config, store.input_kind)
        splits = load_splits(store, config)
        metric = label_kind(store.label_kind).metric
        metrics = {"task": store.task, "mode": config.mode, "model": config.model, "ensemble": config.ensemble,
                   "seed": config.seed, "store": str(store_path), "store_digest": store.digest, "metric": metric}
        rundir.write_config({**config.to_dict(), "store": str(store_path), "store_digest": store.digest,
                             "store_signature": signature(store), "job": job or {},
                             "embeddings_source": describe(config.embeddings) if config.embeddings else None})
        if not trainer.trains:
            scores = trainer.predict(splits, config.seed, store.label_kind)
            metrics.update(best_epoch=0, splits={name: split_metrics(scores[name], data, store.label_kind)
                                                 for name, data in splits.items()})
        else:
            with rundir.history() as log:
                members, best_epoch, history = fit(config, store, splits, log=log, device=device)
            metrics.update(best_epoch=best_epoch, splits=evaluate(members, splits, store.label_kind, device),
                           alignment=alignments(members, splits, store.label_kind, device))
            rundir.save_model(members, config.model, model_kwargs(config, store, splits["train"]))
            history_png(history, rundir.path / "history.png", metric,
                        f"{store.task} {config.mode}, {config.ensemble} member(s), best epoch {best_epoch}")
    rundir.write_metrics(metrics)
    return metrics


def signature(store: Store) -> dict:
    """What a model trained on `store` needs of any store it is evaluated on."""
    vocab = store.vocab
    return {"input_kind": store.input_kind, "label_kind": store.label_kind, "class_names": store.class_names,
            "vocab_size": None if vocab is None else len(vocab),
            "vocab_sha256": None if vocab is None else hashlib.sha256("\n".join(vocab).encode()).hexdigest()}


def signature_mismatch(trained: dict, other: dict) -> str | None:
    """The first difference that makes a trained model meaningless on the other store, named."""
    for key, what in (("input_kind", "input kind"), ("label_kind", "label kind"), ("class_names", "classes"),
                      ("vocab_size", "vocabulary size"), ("vocab_sha256", "vocabulary")):
        if trained.get(key) != other.get(key):
            if key == "vocab_sha256":
                return ("its vocabulary differs from the run's (same size, other words or order; build it with "
                        "cfbuild transfer --vocab-from)")
            return f"its {what} is {other.get(key)!r}, the run was trained on {trained.get(key)!r}"
    return None
