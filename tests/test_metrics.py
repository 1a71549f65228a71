"""Metrics against hand-worked cases and brute force: mAP (ties included) and VQA accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cftrain.labels import SoftTargets, average_precision, mean_average_precision
from cftrain.data import SplitTensors
from cftrain.metrics import pair_consistency, split_metrics


def brute_force_ap(scores, positive) -> float:
    """Mean over positives of (#positives scored >= s) / (#rows scored >= s), s = the positive's score."""
    precisions = [np.sum(positive & (scores >= s)) / np.sum(scores >= s) for s in scores[positive]]
    return float(np.mean(precisions))


def test_average_precision_by_hand():
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    # a tie at 0.5 between a positive and a negative: the positive's precision is 1/3, not 1/2
    assert average_precision(np.array([0.9, 0.5, 0.5, 0.1]), np.array([0, 1, 0, 1])) == pytest.approx((1 / 3 + 2 / 4) / 2)


@pytest.mark.parametrize("seed", range(5))
def test_mean_average_precision_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(40, 7)).astype(np.float32)  # few distinct values: many ties
    labels = (rng.random((40, 7)) < 0.3).astype(np.float32)
    labels[:, 3] = 0  # a class without positives is left out of the mean
    expected = np.mean([brute_force_ap(scores[:, c], labels[:, c].astype(bool)) for c in range(7) if c != 3])
    assert mean_average_precision(scores, labels) == pytest.approx(100 * expected)


def _split(targets, labels, is_cf, subsets) -> SplitTensors:
    return SplitTensors("t", {}, targets, labels, torch.as_tensor(is_cf), np.zeros((0, 2), int), subsets)


def test_multilabel_split_metrics_per_group():
    rng = np.random.default_rng(0)
    labels = torch.as_tensor((rng.random((12, 3)) < 0.5).astype(np.float32))
    logits = torch.as_tensor(rng.normal(size=(12, 3)).astype(np.float32))
    is_cf = np.arange(12) >= 6
    out = split_metrics(logits, _split(labels, labels.argmax(1), is_cf, {"hard_edited": np.array([7, 9, 11])}),
                        "multilabel")
    for group, rows in (("all", np.arange(12)), ("original", np.arange(6)), ("edited", np.arange(6, 12)),
                        ("hard_edited", np.array([7, 9, 11]))):
        lab, sc = labels.numpy()[rows], logits.numpy()[rows]
        expected = np.mean([brute_force_ap(sc[:, c], lab[:, c].astype(bool)) for c in range(3) if lab[:, c].any()])
        assert out[group] == {"n": len(rows), "map": pytest.approx(round(100 * expected, 2))}


def test_vqa_accuracy_per_answer_type_by_hand():
    # 4 questions over 5 answers; predictions = argmax of the logits: 2, 0, 4, 1
    index = torch.tensor([[2, 3], [1, -1], [4, 0], [-1, -1]])
    score = torch.tensor([[1.0, 0.3], [0.6, 0.0], [0.3, 0.9], [0.0, 0.0]])
    logits = torch.full((4, 5), -1.0)
    logits[0, 2] = logits[1, 0] = logits[2, 4] = logits[3, 1] = 1.0
    targets = SoftTargets(index, score, 5)
    subsets = {"yes/no": np.array([0, 3]), "other": np.array([1, 2])}
    out = split_metrics(logits, _split(targets, targets.best(), [False, False, False, True], subsets), "soft")
    # scores of the predictions: 1.0 (answer 2), 0 (0 not among 1), 0.3 (answer 4), 0 (empty target)
    assert out["all"]["vqa_accuracy"] == pytest.approx(100 * 1.3 / 4)
    assert out["yes/no"]["vqa_accuracy"] == pytest.approx(50.0)
    assert out["other"]["vqa_accuracy"] == pytest.approx(15.0)
    assert out["edited"] == {"n": 1, "vqa_accuracy": 0.0}


def _paired(targets, labels, pairs, kinds) -> SplitTensors:
    return SplitTensors("t", {}, targets, labels, torch.zeros(len(labels), dtype=torch.bool),
                        np.array(pairs), {}, None, np.array(kinds, dtype=object))


def test_pair_consistency_per_kind_by_hand():
    # SNLI-like: original 0 (class 0) with a premise edit 1 (class 1) and a hypothesis edit 2 (class 2);
    # original 3 (class 1) with a premise edit 4 (class 0). Predicted: 0, 1, 0, 1, 0 (row 2 wrong).
    labels = torch.tensor([0, 1, 2, 1, 0])
    logits = torch.full((5, 3), -1.0)
    logits[torch.arange(5), torch.tensor([0, 1, 0, 1, 0])] = 1.0
    out = pair_consistency(logits, _paired(torch.eye(3)[labels], labels, [[0, 1], [0, 2], [3, 4]],
                                           ["premise", "hypothesis", "premise"]), "multiclass")
    assert out == {"all": {"pairs": 3, "consistency": pytest.approx(66.67)},
                   "premise": {"pairs": 2, "consistency": 100.0}, "hypothesis": {"pairs": 1, "consistency": 0.0}}


def test_pair_consistency_single_logit_and_one_kind():
    labels = torch.tensor([1, 0, 1, 0])
    logits = torch.tensor([[2.0], [-1.0], [0.5], [0.3]])  # rows 0-2 right, row 3 wrong
    out = pair_consistency(logits, _paired(labels[:, None].float(), labels, [[0, 1], [2, 3]], ["edited"] * 2),
                           "binary")
    assert out == {"all": {"pairs": 2, "consistency": 50.0}}  # one kind: no per-kind entries
    assert pair_consistency(logits, _split(labels[:, None].float(), labels, [False] * 4, {}), "binary") is None


def test_pair_consistency_multilabel_looks_at_the_changed_classes_only():
    targets = torch.tensor([[1.0, 1, 0], [0, 1, 0],    # pair 0: the edit removed class 0
                            [1, 0, 1], [1, 0, 0],      # pair 1: the edit removed class 2
                            [0, 1, 0], [0, 1, 0]])     # pair 2: nothing changed: left out
    logits = torch.tensor([[3.0, -1, 5], [-2, -1, 5],  # class 0 right on both; classes 1, 2 wrong (unchanged/no)
                           [1, 1, 1], [1, 1, 1],       # class 2: right on the original, wrong on the edit
                           [-1, -1, -1], [-1, -1, -1]])
    out = pair_consistency(logits, _paired(targets, targets.argmax(1), [[0, 1], [2, 3], [4, 5]], ["edited"] * 3),
                           "multilabel")
    assert out == {"all": {"pairs": 2, "consistency": 50.0}}


def test_pair_consistency_is_undefined_for_soft_answers_and_pair_kinds_follow_row_subsets():
    targets = SoftTargets(torch.tensor([[1], [-1]]), torch.tensor([[1.0], [0.0]]), 3)
    out = pair_consistency(torch.zeros(2, 3), _paired(targets, targets.best(), [[0, 1]], ["masked"]), "soft")
    assert out["all"]["consistency"] is None and "no answer" in out["all"]["undefined"]
    labels = torch.tensor([0, 1, 1, 0, 1])
    split = _paired(labels[:, None].float(), labels, [[0, 1], [0, 2], [3, 4]], ["a", "b", "c"])
    kept = split.rows([0, 2, 3, 4])
    assert kept.pairs.tolist() == [[0, 1], [2, 3]] and kept.pair_kinds.tolist() == ["b", "c"]
