"""Evaluating trained members: metrics and gradient alignment on every split, the signature a store
must match for a run to be evaluated on it, and `cftrain eval` (a run on another store)."""

from __future__ import annotations

import hashlib

from cfpairs.errors import UserError
from cfpairs.outputs import check_output, signed_json, write_page
from cfpairs.store import Store
from cftrain.alignment import split_alignment
from cftrain.labels import training_labels
from cftrain.loading import load_splits, open_store, open_verified, resolve_device
from cftrain.metrics import pair_consistency, split_metrics
from cftrain.presets import RunConfig
from cftrain.rundir import RunDir, strict_json
from cftrain.scores import member_scores


def evaluate(members: list, splits: dict, labels, device="cpu") -> tuple[dict, dict, dict]:
    """(metrics of every split, pair consistency of every split with pairs, {split: the kept
    predictions, `cftrain.scores.SplitScores`}), from one pass of every member over each split."""
    passes = {name: member_scores(members, data, labels.name, device) for name, data in splits.items()}
    return (*scored({name: found[0] for name, found in passes.items()}, splits, labels),
            {name: found[1] for name, found in passes.items()})


def scored(logits: dict, splits: dict, labels) -> tuple[dict, dict]:
    """(metrics, pair consistency) of each split's logits (or a method's drawn scores)."""
    consistency = {name: pair_consistency(logits[name], data, labels) for name, data in splits.items()}
    return ({name: split_metrics(logits[name], data, labels) for name, data in splits.items()},
            {name: value for name, value in consistency.items() if value is not None})


def alignments(members: list, splits: dict, labels, device="cpu") -> dict:
    """Gradient alignment on every split with pairs (cftrain.alignment)."""
    out = {name: split_alignment(members, data, labels, device) for name, data in splits.items()}
    return {name: value for name, value in out.items() if value is not None}


def signature(store: Store) -> dict:
    """What a model trained on `store` needs of any store it is evaluated on."""
    vocab = store.vocab
    return {"input_kind": store.input_kind, "label_kind": store.label_kind, "class_names": store.class_names,
            "vocab_size": None if vocab is None else len(vocab),
            "vocab_sha256": None if vocab is None else hashlib.sha256("\n".join(vocab).encode()).hexdigest(),
            "feature_width": store.feature_width()}



def signature_mismatch(trained: dict, other: dict) -> str | None:
    """The first difference that makes a trained model meaningless on the other store, named."""
    for key, what in (("input_kind", "input kind"), ("label_kind", "label kind"), ("class_names", "classes"),
                      ("vocab_size", "vocabulary size"), ("vocab_sha256", "vocabulary"),
                      ("feature_width", "feature width")):
        if key not in trained:  # a run trained before the key was recorded
            continue
        if trained.get(key) != other.get(key):
            if key == "vocab_sha256":
                return ("its vocabulary differs from the run's (same size, other words or order; build it with "
                        "cfbuild transfer --vocab-from)")
            return f"its {what} is {other.get(key)!r}, the run was trained on {trained.get(key)!r}"
    return None


def check_fits(run_dir, store_path, allow_external: bool = False) -> RunConfig:
    """The run's config, after checking that the store fits the run (named difference otherwise)."""
    rundir = RunDir(run_dir)
    rundir.check_trained()
    values = rundir.read_config()
    if "store_signature" not in values:
        raise UserError(f"{run_dir}: config.json has no store_signature (written by an older cftrain?); "
                        "train the run again")
    with open_store(store_path, check=False, allow_external=allow_external) as store:
        problem = signature_mismatch(values["store_signature"], signature(store))
    if problem:
        raise UserError(f"{store_path}: does not fit the run {run_dir}: {problem}")
    return RunConfig.from_dict(values)


def check_own_store(run_dir, store: Store) -> None:
    """A run's predictions are kept only on the store it trained on (by content digest)."""
    trained = RunDir(run_dir).read_config().get("store_digest")
    if store.digest != trained:
        raise UserError(f"--keep: {store.path} is not the store {run_dir} trained on (digest {store.digest[:12]}..., "
                        f"the run's {str(trained)[:12]}...); give the run's own store")


def evaluate_run(run_dir, store_path, out=None, device: str = "auto", force: bool = False,
                 verify: bool = False, allow_external: bool = False, keep: bool = False) -> dict:
    """Metrics of a trained run on every split of another store (e.g. a transfer set); the store's
    splits are loaded as the run loaded its own (token truncation, subsets). `keep`: the store is
    the run's own, and its predictions go into RUN_DIR/predictions.npz (a run trained before runs
    kept them: `cftrain.late_columns`)."""
    if out is not None:
        check_output(out, "json", force, inputs=[run_dir, store_path])
    config = check_fits(run_dir, store_path, allow_external)
    target = resolve_device(device)
    store, verified = open_verified(store_path, verify, allow_external=allow_external)
    with store:
        if keep:
            check_own_store(run_dir, store)
        members = [m.to(target) for m in RunDir(run_dir).load_members()]
        labels = training_labels(store.label_kind, config.loss)
        splits = load_splits(store, config, training=keep, labels=labels)
        metrics, consistency, kept = evaluate(members, splits, labels, target)
        if keep:
            RunDir(run_dir).keep_scores(kept, len(store.class_names))
        result = {"run": str(run_dir), "store": str(store_path), "store_digest": verified or store.digest,
                  "store_verified": verified is not None, "task": store.task,
                  "metric": labels.metric, "splits": metrics, "consistency": consistency}
    if out:
        write_page(out, "json", strict_json(signed_json(result)) + "\n", force, inputs=[run_dir, store_path])
    return result
