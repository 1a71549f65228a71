"""Gradient alignment against a hand computation on a linear model, and the learning-curve subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cfpairs import open_store
from cfpairs.store import StoreWriter
from cftrain.alignment import split_alignment
from cftrain.data import group_subset, load_split, pair_groups
from cftrain.models import make_model


def small_store(path, n=6, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, dim)).astype(np.float32)
    label = np.r_[rng.integers(0, 2, n), np.zeros(n, np.int64)]
    label[n:] = 1 - label[:n]
    with StoreWriter(path, task="lin", input_kind="vector", label_kind="binary", class_names=["a", "b"],
                     build={}, sources=[]) as writer:
        for name in ("train", "val"):
            writer.write_split(name, {"id": [str(i) for i in range(2 * n)], "is_counterfactual": np.arange(2 * n) >= n,
                                      "label": label, "x": x}, np.stack([np.arange(n), n + np.arange(n)], 1),
                               ["edited"] * n)
    return x, label, n


def test_alignment_of_a_linear_model_by_hand(tmp_path):
    x, y, n = small_store(tmp_path / "s.h5")
    with open_store(tmp_path / "s.h5") as store:
        data = load_split(store, "val")
    models = []
    for k, w in enumerate(([1.0, -2.0, 0.5], [0.0, 1.0, 3.0])):
        model = make_model("mlp", input_dim=3, n_outputs=1, hidden=[])
        with torch.no_grad():
            model.net[0].weight[:] = torch.tensor([w])
            model.net[0].bias[:] = 0.3 * k
        models.append(model)
    # by hand: g = w for a linear logit; t = sign(y_j - y_i) (x_j - x_i); each pair gives the same
    # cosine in both directions
    expected = []
    for w in ([1.0, -2.0, 0.5], [0.0, 1.0, 3.0]):
        w = np.array(w)
        cos = [np.sign(y[b] - y[a]) * (w @ (x[b] - x[a])) / (np.linalg.norm(w) * np.linalg.norm(x[b] - x[a]))
               for a, b in zip(range(n), range(n, 2 * n))]
        expected.append(np.mean(cos))
    got = split_alignment(models, data, "binary")
    assert got["edges"] == 2 * n
    assert got["members"] == pytest.approx(expected, abs=1e-4)
    assert got["cosine"] == pytest.approx(np.mean(expected), abs=1e-4)


def test_group_subsets_are_nested_and_keep_whole_groups(tmp_path):
    small_store(tmp_path / "s.h5", n=20)
    with open_store(tmp_path / "s.h5") as store:
        data = load_split(store, "train")
    previous = set()
    for fraction in (1 / 8, 1 / 4, 1 / 2, 1.0):
        part = group_subset(data, fraction, seed=3)
        ids = set(part.inputs["x"][:, 0].tolist())
        assert previous <= ids  # nested
        assert len(part.pairs) == int(np.ceil(fraction * 20))  # whole groups: every pair kept with both rows
        assert len(part) == 2 * len(part.pairs) and len(pair_groups(len(part), part.pairs)) == len(part.pairs)
        previous = ids
