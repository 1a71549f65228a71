"""Evaluation: ensemble logits (mean over members) and per-split metrics in percent.

The metric follows the store's label kind (`cfpairs.label_kinds`): accuracy (binary,
multiclass), mean average precision over classes (multilabel), VQA accuracy = the soft
score of the predicted answer (soft). Groups: all rows, originals, edited rows, and every
named subset. Each group is `{"n": rows, <metric name>: value}` (value null, with `undefined`
saying why, where the metric is not defined, e.g. mAP over rows without a positive); the name is
`cftrain.labels.Labels.metric`, stored beside the groups in metrics.json and table.json.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cftrain.labels import Labels, training_labels
from cftrain.data import SplitTensors, to_device

EVAL_BATCH = 2048


@torch.no_grad()
def ensemble_logits(models, data: SplitTensors, device: str | torch.device = "cpu") -> torch.Tensor:
    """Mean logits of the models over every row of `data` (eval mode), batch by batch, on the CPU."""
    for model in models:
        model.eval()
    chunks = []
    step = EVAL_BATCH if data.features is None else EVAL_BATCH // 8  # 256 x 36 x 2048 floats: 75 MB
    for start in range(0, len(data), step):
        batch = to_device(data.batch(np.arange(start, min(start + step, len(data)))), device)
        chunks.append(torch.stack([model(batch) for model in models]).mean(0).cpu())
    return torch.cat(chunks) if chunks else torch.zeros((0, 1))


def split_metrics(logits: torch.Tensor, data: SplitTensors, labels) -> dict:
    """{"all": {...}, "original": {...}, "edited": {...}, <subset>: {...}}, each {n, <metric>};
    `labels`: the label kind's `cftrain.labels.Labels`, or its name."""
    labels = labels if isinstance(labels, Labels) else training_labels(labels)
    groups = {"all": np.arange(len(data)), "original": np.flatnonzero(~data.is_counterfactual.numpy()),
              "edited": np.flatnonzero(data.is_counterfactual.numpy())}
    groups.update({name: np.unique(np.asarray(rows, dtype=np.int64)) for name, rows in data.subsets.items()})
    out = {}
    for group, rows in groups.items():
        if len(rows):
            index = torch.as_tensor(rows)
            value = labels.score(logits[index], data.targets[index], data.labels[index])
            out[group] = {"n": len(rows), labels.metric: round(value, 2)} if math.isfinite(value) else \
                {"n": len(rows), labels.metric: None, "undefined": labels.undefined}
    return out


def pair_consistency(logits: torch.Tensor, data: SplitTensors, labels) -> dict | None:
    """{"all": {...}, <pair kind>: {...}}, each {pairs, consistency}: the share (%) of pairs whose
    original and counterfactual are both predicted right (`Labels.pairs_right`), over every flip
    pair and per pair kind (keep pairs have their flip rate, `cftrain.columns`); None for a split
    without flip pairs. Where undefined, consistency is null and
    `undefined` says why."""
    labels = labels if isinstance(labels, Labels) else training_labels(labels)
    flips = ~keep_mask(data)  # consistency is of the pairs that flip the label
    pairs = np.asarray(data.pairs, dtype=np.int64).reshape(-1, 2)[flips]
    if not len(pairs):
        return None
    if labels.consistency_undefined:
        return {"all": {"pairs": len(pairs), "consistency": None, "undefined": labels.consistency_undefined}}
    both = labels.pairs_right(logits, data.targets, data.labels, pairs)
    kinds = data.pair_kinds[flips] if data.pair_kinds is not None else np.full(len(pairs), "edited", dtype=object)
    groups = {"all": np.ones(len(pairs), bool)}
    if len(set(kinds.tolist())) > 1:
        groups.update({str(kind): kinds == kind for kind in dict.fromkeys(kinds.tolist())})
    out = {}
    for name, chosen in groups.items():
        values = both[chosen]
        defined = values[~np.isnan(values)]
        out[name] = {"pairs": int(len(defined)), "consistency": round(100.0 * float(defined.mean()), 2)} \
            if len(defined) else {"pairs": 0, "consistency": None, "undefined": "no pair changes a class"}
    return out


def keep_mask(data) -> np.ndarray:
    """(P,) True for a split's keep pairs (`pair_relations`; none for a split without relations)."""
    pairs = np.asarray(data.pairs).reshape(-1, 2)
    relations = getattr(data, "pair_relations", None)
    if relations is None:
        return np.zeros(len(pairs), bool)
    return np.asarray(relations, dtype=object) == "keep"


def mean_se(values, digits: int = 2) -> dict:
    """{mean, stderr, n} of the defined values, rounded to `digits`: standard error = sample std /
    sqrt(n); None for one value (one seed says nothing about the spread: views print n=1)."""
    defined = np.array([v for v in values if v is not None], float)
    if not len(defined):
        return {"mean": None, "stderr": None, "n": 0}
    se = round(float(defined.std(ddof=1) / math.sqrt(len(defined))), digits) if len(defined) > 1 else None
    return {"mean": round(float(defined.mean()), digits), "stderr": se, "n": len(defined)}
