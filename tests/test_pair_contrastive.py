"""The pair-contrastive method (cftrain/methods/pair_contrastive.py): its term on a hand-worked batch,
one term per ensemble member, and the refusal of a model whose encoding is its input data."""

from __future__ import annotations

import math

import pytest
import torch

from cfpairs.errors import UserError
from cftrain.methods.pair_contrastive import supervised_contrastive
from cftrain.presets import resolve
from cftrain.train import run


def test_the_term_on_a_hand_worked_batch():
    # rows 0, 2 positive (1, 0); rows 1, 3 negative: (0, 1) and (-1, 0); temperature 1
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])[:, None, :]
    targets = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    sums, anchors = supervised_contrastive(x, targets, temperature=1.0)
    e = math.e
    by_hand = [math.log(1 + e + 1 / e) - 1,  # anchor 0: positive 2 at cos 1, others at 0 and -1
               math.log(3),                  # anchor 1: positive 3 at cos 0, every other row at cos 0
               math.log(1 + e + 1 / e) - 1,  # anchor 2: as anchor 0
               math.log(1 + 2 / e)]          # anchor 3: positive 1 at cos 0, rows 0 and 2 at cos -1
    assert anchors.tolist() == [4] and sums.item() == pytest.approx(sum(by_hand), rel=1e-6)
    mine, owned = supervised_contrastive(x, targets, 1.0, rows=torch.tensor([True, False, False, True]))
    assert owned.tolist() == [2] and mine.item() == pytest.approx(by_hand[0] + by_hand[3], rel=1e-6)


def test_rows_without_a_positive_are_left_out_and_members_are_their_own():
    x = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([[1.0], [0.0], [1.0]])  # row 1 has no positive
    sums, anchors = supervised_contrastive(x, targets, temperature=0.5)
    alone = [supervised_contrastive(x[:, k:k + 1], targets, 0.5)[0] for k in range(2)]
    assert anchors.tolist() == [2, 2] and sums.tolist() == pytest.approx([a.item() for a in alone], rel=1e-6)


def test_a_model_that_encodes_its_input_data_is_refused_before_any_work(toy, tmp_path):
    with pytest.raises(UserError, match="model mlp encodes its input data as it is"):
        resolve("toy", "vector", mode="pair-contrastive")
    assert not (tmp_path / "r").exists()


def test_it_trains_a_text_store(stores, tmp_path):
    metrics = run(stores["text"], tmp_path / "r", resolve("table", "text", mode="pair-contrastive", epochs=2))
    history = (tmp_path / "r" / "history.jsonl").read_text()
    assert '"contrastive"' in history and metrics["splits"]["val"]["all"]["n"] > 0
