"""A trained run's predictions on a store, pair by pair: `cftrain eval RUN STORE --predictions FILE`
writes them for every split (a JSON page `cfbuild view --predictions FILE` reads, without the trainer)."""

from __future__ import annotations

import numpy as np
import torch

from cftrain.columns import COLUMNS, column_values
from cftrain.data import load_split
from cftrain.evaluate import check_fits
from cftrain.labels import training_labels
from cftrain.metrics import ensemble_logits, keep_mask, pair_consistency
from cftrain.rundir import RunDir
from cftrain.scores import kept_scores
from cftrain.loading import open_verified, truncate

BADGES = {(1.0, 1.0): "both", (1.0, 0.0): "original", (0.0, 1.0): "edited", (0.0, 0.0): "none"}


def split_predictions(run_dir, store_path, split: str, allow_external: bool = False) -> dict:
    """{members: [[each row's predicted class(es) as text] per member], ensemble: [...],
    correct: [each pair's badge: both | original | edited | none | None], consistency: the split's
    pair consistency as in metrics.json}. Every row of the split is predicted (a run trained on
    store subsets too), with the run's own token truncation."""
    return predictions_page(run_dir, store_path, allow_external, [split])["splits"][split]


def predictions_page(run_dir, store_path, allow_external: bool = False, splits: list | None = None) -> dict:
    """{run, store, store_digest, metric, splits: {split: what `split_predictions` gives}} for every split
    (or `splits`): what `cftrain eval --predictions` writes."""
    config = check_fits(run_dir, store_path, allow_external)
    store, verified = open_verified(store_path, allow_external=allow_external)
    with store:
        members = RunDir(run_dir).load_members()
        labels = training_labels(store.label_kind, config.loss)
        found = {name: _predictions(store, name, config, members, labels) for name in (splits or store.splits)}
        return {"kind": "predictions", "run": str(run_dir), "store": str(store_path),
                "store_digest": verified or store.digest, "metric": next(iter(found.values()))["metric"],
                "splits": found}


def _predictions(store, split: str, config, members: list, labels) -> dict:
    data = truncate(load_split(store, split, labels), config.get("max_tokens"))
    return split_page([ensemble_logits([m], data) for m in members], ensemble_logits(members, data), data, labels,
                      store.class_names)


def split_page(member_logits: list, logits, data, labels, names: list) -> dict:
    """A split's entry of a predictions page from each member's logits and the ensemble's (a run's,
    or a reference's: one member)."""
    pairs = np.asarray(data.pairs, dtype=np.int64).reshape(-1, 2)
    consistency = pair_consistency(logits, data, labels)
    if labels.consistency_undefined or not len(pairs):
        correct = [None] * len(pairs)
    else:
        sides = labels.pair_sides_right(logits, data.targets, data.labels, pairs)
        correct = [None if np.isnan(row).any() else BADGES[tuple(row)] for row in sides]
    keep = keep_mask(data)
    if keep.any():  # a keep pair's badge: did the prediction move across the edit?
        shown = labels.predicted_names(logits, names)
        for p in np.flatnonzero(keep):
            correct[p] = "moved" if shown[pairs[p, 0]] != shown[pairs[p, 1]] else "steady"
    kept = {data.name: kept_scores(torch.stack(member_logits), data, labels.name)}
    columns = {name: {"header": COLUMNS[name].header, "better": COLUMNS[name].better, **cells[data.name]}
               for name, cells in column_values(kept, labels).items() if data.name in cells}
    return {"members": [labels.predicted_names(m, names) for m in member_logits],
            "ensemble": labels.predicted_names(logits, names), "correct": correct,
            "consistency": consistency, "metric": labels.metric, "columns": columns}
