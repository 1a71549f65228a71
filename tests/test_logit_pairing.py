"""Counterfactual logit pairing (cftrain/methods/logit_pairing.py): its term by hand (the one-sided
margin on changed classes, Garg et al.'s invariance on kept ones), the rows a process owns, and
what training with it does to a pair's logits."""

from __future__ import annotations

import json

import pytest
import torch

from cftrain.methods.logit_pairing import logit_pairing
from cftrain.presets import resolve
from cftrain.train import run


def test_the_term_by_hand():
    # one member, three classes; rows 0 (class 0) and 1 (class 1) a pair; class 2 is kept (off in both)
    logits = torch.tensor([[[2.0, -1.0, 0.5]], [[0.5, 1.5, -0.5]]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    edges = torch.tensor([[0, 1], [1, 0]])
    sums, counts = logit_pairing(logits, targets, edges, margin=2.0)
    # edge (0, 1): z gap (-1.5, 2.5, -1), label change (-1, 1, 0): residuals max(0, 2 - 1.5) = 0.5,
    # max(0, 2 - 2.5) = 0 and (kept class) |-1| = 1 -> mean (0.5 + 0 + 1) / 3; edge (1, 0) the same
    assert counts.tolist() == [2.0] and sums.item() == pytest.approx(2 * 1.5 / 3)
    wide, _ = logit_pairing(logits, targets, edges, margin=0.0)  # margin 0: only the kept class's invariance
    assert wide.item() == pytest.approx(2 * 1.0 / 3)
    wrong_way, _ = logit_pairing(logits[[1, 0]], targets, edges, margin=0.0)  # each gap the wrong way round
    assert wrong_way.item() == pytest.approx(2 * (1.5 + 2.5 + 1) / 3)
    mine, owned = logit_pairing(logits, targets, edges, 2.0, rows=torch.tensor([True, False]))
    assert owned.tolist() == [1.0] and mine.item() == pytest.approx(1.5 / 3)


def test_members_are_their_own():
    logits = torch.randn(4, 3, 1, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    edges = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2]])
    sums, _ = logit_pairing(logits, targets, edges, 1.0)
    alone = [logit_pairing(logits[:, k:k + 1], targets, edges, 1.0)[0].item() for k in range(3)]
    assert sums.tolist() == pytest.approx(alone)


def pair_gaps(store, run_dir):
    """The val pairs' mean logit gap (edit minus original, signed by the label change)."""
    from cfpairs import open_store
    from cftrain.data import load_split
    from cftrain.metrics import ensemble_logits
    from cftrain.rundir import RunDir
    with open_store(store) as opened:
        data = load_split(opened, "val")
    logits = ensemble_logits(RunDir(run_dir).load_members(), data)[:, 0]
    a, b = torch.as_tensor(data.pairs[:, 0]), torch.as_tensor(data.pairs[:, 1])
    sign = data.targets[b, 0] - data.targets[a, 0]
    return float(((logits[b] - logits[a]) * sign).mean())


def test_training_widens_each_pairs_logit_gap_towards_the_margin(toy, tmp_path):
    margin = 25.0  # five epochs of augmentation alone leave a val pair's gap near 5 (CLP: near 8.5)
    run(toy, tmp_path / "clp", resolve("toy", mode="logit-pairing", clp_weight=5.0, clp_margin=margin, epochs=5,
                                       lr=10.0))
    run(toy, tmp_path / "aug", resolve("toy", mode="augmented", epochs=5, lr=10.0))
    history = [json.loads(line) for line in (tmp_path / "clp" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["clp"] < history[0]["clp"] and history[0]["clp_rows"] > 0
    with_clp, without = pair_gaps(toy, tmp_path / "clp"), pair_gaps(toy, tmp_path / "aug")
    assert without + 2 < with_clp < margin, (with_clp, without)
