"""Gradient alignment: is a model "right for the right reasons" on a split's pairs?

For every pair (both directions, as GS supervises them) the cosine between the model's input
gradient g of the supervised class and the signed pair direction t, in the model's GS space:
exactly the cosine GS pushes towards 1, measured here whether or not the model trained with GS.
An ensemble's figure is each member's mean over the split's pairs, averaged over members."""

from __future__ import annotations

import torch

from cftrain.data import PairBatches, SplitTensors, to_device
from cftrain.gs import edge_cosines

BATCH = 256


def member_alignment(model, data: SplitTensors, kind: str, device="cpu") -> tuple[float, int]:
    """(mean cosine, supervised edges) of one model over the split's pairs."""
    model.eval()
    total, count = 0.0, 0
    with torch.enable_grad():
        for batch in PairBatches(data, BATCH, seed=0):
            batch = to_device(batch, device)
            x = model.encode(batch).detach().requires_grad_(True)
            cos, valid = edge_cosines(x, model.head(x, batch), batch["targets"], batch["edges"], kind,
                                      create_graph=False)
            total, count = total + float(cos[valid].detach().sum()), count + int(valid.sum())
    return (total / count if count else float("nan")), count


def split_alignment(models: list, data: SplitTensors, kind: str, device="cpu") -> dict | None:
    """{"cosine": ensemble mean, "members": [...], "edges": n}; None for a split without pairs."""
    if not len(data.pairs):
        return None
    values = [member_alignment(m, data, kind, device) for m in models]
    members = [v for v, _ in values]
    if not values[0][1]:
        return {"cosine": None, "members": [], "edges": 0, "undefined": "no pair with a supervisable direction"}
    return {"cosine": round(sum(members) / len(members), 4), "members": [round(v, 4) for v in members],
            "edges": values[0][1]}
