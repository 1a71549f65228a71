"""Evaluation: predictions of an ensemble (mean of logits) and per-split metrics in percent."""

from __future__ import annotations

import torch

from cftrain.data import SplitTensors

EVAL_BATCH = 2048


@torch.no_grad()
def ensemble_logits(models, data: SplitTensors) -> torch.Tensor:
    """Mean logits of the models over every row of `data` (eval mode)."""
    outputs = []
    for model in models:
        model.eval()
        chunks = []
        for start in range(0, len(data), EVAL_BATCH):
            batch = {k: v[start:start + EVAL_BATCH] for k, v in data.inputs.items()}
            chunks.append(model(batch))
        outputs.append(torch.cat(chunks))
    return torch.stack(outputs).mean(0)


def predictions(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * float((pred == labels).float().mean()) if len(labels) else float("nan")


def split_metrics(pred: torch.Tensor, data: SplitTensors) -> dict:
    """{"all": {...}, "original": {...}, "edited": {...}, <subset>: {...}}, each with n and accuracy."""
    groups = {"all": torch.ones(len(data), dtype=torch.bool), "original": ~data.is_counterfactual,
              "edited": data.is_counterfactual}
    for name, rows in data.subsets.items():
        mask = torch.zeros(len(data), dtype=torch.bool)
        mask[torch.as_tensor(rows, dtype=torch.long)] = True
        groups[name] = mask
    return {name: {"n": int(mask.sum()), "accuracy": round(accuracy(pred[mask], data.labels[mask]), 2)}
            for name, mask in groups.items() if mask.any()}
