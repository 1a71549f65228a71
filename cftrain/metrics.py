"""Evaluation: ensemble logits (mean over members) and per-split metrics in percent.

The metric follows the store's label kind: accuracy (binary, multiclass), mean average
precision over classes (multilabel), VQA accuracy = the soft score of the predicted
answer (soft). Groups: all rows, originals, edited rows, and every named subset.
"""

from __future__ import annotations

import numpy as np
import torch

from cftrain.data import SoftTargets, SplitTensors

EVAL_BATCH = 2048
METRIC = {"binary": "accuracy", "multiclass": "accuracy", "multilabel": "map", "soft": "vqa_accuracy"}


@torch.no_grad()
def ensemble_logits(models, data: SplitTensors) -> torch.Tensor:
    """Mean logits of the models over every row of `data` (eval mode), batch by batch."""
    for model in models:
        model.eval()
    chunks = []
    step = EVAL_BATCH if data.features is None else EVAL_BATCH // 8  # 256 x 36 x 2048 floats: 75 MB
    for start in range(0, len(data), step):
        batch = data.batch(np.arange(start, min(start + step, len(data))))
        chunks.append(torch.stack([model(batch) for model in models]).mean(0))
    return torch.cat(chunks) if chunks else torch.zeros((0, 1))


def predictions(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP: mean over positives of the precision at their score.

    Tied scores share one threshold: precision there counts every row scored at least as
    high (what a ranking cannot tell apart is not credited in either order)."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positive[order].astype(bool)
    true_pos = np.cumsum(hits)
    group_last = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), len(ranked) - 1]
    last_of = np.repeat(group_last, np.diff(np.r_[-1, group_last]))  # each row's tie group's last index
    return float((true_pos[last_of] / (last_of + 1))[hits].mean())


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """mAP in percent over the classes (columns) with at least one positive."""
    classes = np.flatnonzero(labels.sum(0) > 0)
    if not len(classes):
        return float("nan")
    return 100.0 * float(np.mean([average_precision(scores[:, c], labels[:, c]) for c in classes]))


def soft_scores(targets: SoftTargets, pred: torch.Tensor) -> torch.Tensor:
    """Per row, the target's score of the predicted class (0 when it is not among the answers)."""
    return ((targets.index == pred[:, None]) * targets.score).sum(1)


def _metric(label_kind: str, logits: torch.Tensor, data: SplitTensors, rows: torch.Tensor) -> float:
    if not len(rows):
        return float("nan")
    if label_kind == "multilabel":
        return mean_average_precision(logits[rows].numpy(), data.targets[rows].numpy())
    pred = predictions(logits[rows])
    if label_kind == "soft":
        return 100.0 * float(soft_scores(data.targets[rows], pred).mean())
    return 100.0 * float((pred == data.labels[rows]).float().mean())


def split_metrics(logits: torch.Tensor, data: SplitTensors, label_kind: str) -> dict:
    """{"all": {...}, "original": {...}, "edited": {...}, <subset>: {...}}, each {n, <metric>}."""
    groups = {"all": torch.ones(len(data), dtype=torch.bool), "original": ~data.is_counterfactual,
              "edited": data.is_counterfactual}
    for name, rows in data.subsets.items():
        mask = torch.zeros(len(data), dtype=torch.bool)
        mask[torch.as_tensor(rows, dtype=torch.long)] = True
        groups[name] = mask
    name = METRIC[label_kind]
    return {group: {"n": int(mask.sum()), name: round(_metric(label_kind, logits, data, torch.nonzero(mask)[:, 0]), 2)}
            for group, mask in groups.items() if mask.any()}
