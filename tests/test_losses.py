"""Losses behind their registry (cftrain/losses/): each a file, with the options it declares."""

from __future__ import annotations

import math

import pytest
import torch

from cfpairs.errors import UserError
from cftrain.losses import LOSSES, loss_class, make_loss
from cftrain.presets import resolve


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_gives_each_rows_loss_per_member(name):
    cls = LOSSES[name]
    loss = make_loss(name, cls.serves[0])
    logits = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    targets = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0]), 4).float()
    rows = loss(logits, targets)
    assert rows.shape == (5, 3) and bool((rows >= 0).all())
    member = loss(logits[:, 1:2], targets)  # members never mix: member 1 alone gives its own column
    assert torch.allclose(member[:, 0], rows[:, 1])


def test_focal_by_hand_and_gamma_zero_is_bce():
    logits, targets = torch.tensor([[[2.0]], [[-1.0]]]), torch.tensor([[1.0], [1.0]])
    p = [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))]
    by_hand = [(1 - q) ** 2 * -math.log(q) for q in p]
    assert make_loss("focal", "binary")(logits, targets)[:, 0].tolist() == pytest.approx(by_hand, rel=1e-5)
    config = resolve("toy", "vector", mode="augmented", loss="focal", focal_gamma=0.0)
    assert torch.allclose(make_loss("focal", "binary", config)(logits, targets), make_loss(None, "binary")(logits, targets))


def test_a_loss_option_reaches_its_loss_and_nothing_else_reads_it():
    with pytest.raises(UserError, match="--focal-gamma 1.0: the loss bce does not read it"):
        resolve("toy", "vector", mode="augmented", focal_gamma=1.0)
    assert resolve("toy", "vector", mode="augmented", loss="focal", focal_gamma=1.0).focal_gamma == 1.0


def test_a_loss_for_another_label_kind_is_refused():
    with pytest.raises(UserError, match="--loss multiclass-softmax: does not fit the store's label kind 'soft'"):
        loss_class("multiclass-softmax", "soft")
