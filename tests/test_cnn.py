"""The 1-D CNN text model (cftrain/models/cnn.py): pooling by hand, windows past a text's end left
out, both text kinds, trained end to end (its ensemble forms: tests/test_ensemble.py, its options:
tests/test_registries.py)."""

from __future__ import annotations

import pytest
import torch

from cftrain.models import make_model
from cftrain.presets import resolve
from cftrain.train import run


def small_cnn(**kw):
    model = make_model("cnn", vocab_size=5, n_outputs=1, kernel=[2], filters=1, dropout=0.0, embed_dim=1, **kw)
    with torch.no_grad():  # word w embeds to the number w; the one filter sums a window; no bias
        model.embed.weight.copy_(torch.arange(5.0)[:, None])
        model.convs[0].weight.fill_(1.0)
        model.convs[0].bias.zero_()
    return model


def test_pooling_by_hand_and_windows_past_the_end_left_out():
    model = small_cnn()
    tokens = torch.tensor([[1, 3, 2, 0], [4, 1, 4, 4]])
    length = torch.tensor([3, 2])  # row 1's words 3 and 4 lie past its end (a truncated text)
    pooled = model.encode({"tokens": tokens, "length": length})
    # row 0: windows (1,3)=4, (3,2)=5 -> 5; row 1: only the window (4,1)=5 starts and ends inside
    assert pooled[:, 0].tolist() == [5.0, 5.0]
    tokens[1, 2:] = 0
    assert model.encode({"tokens": tokens, "length": length})[:, 0].tolist() == [5.0, 5.0]


def test_a_text_shorter_than_the_widest_window_is_padded():
    model = make_model("cnn", vocab_size=9, n_outputs=2, kernel=[3, 5], filters=4, embed_dim=6)
    x = model.encode({"tokens": torch.tensor([[3, 4]]), "length": torch.tensor([2])})
    assert x.shape == (1, 8) and torch.isfinite(x).all()


def test_text_pairs_pool_each_side_with_the_same_convolutions():
    model = small_cnn(input_kind="text_pair")
    batch = {"premise_tokens": torch.tensor([[1, 3]]), "premise_length": torch.tensor([2]),
             "hypothesis_tokens": torch.tensor([[2, 2]]), "hypothesis_length": torch.tensor([2])}
    x = model.encode(batch)
    assert x.tolist() == [[4.0, 4.0]]
    # the head reads (u, v, |u - v|, u * v): with one output and unit weights, 4 + 4 + 0 + 16 plus the bias
    with torch.no_grad():
        model.out.weight.fill_(1.0)
        model.out.bias.zero_()
    assert model.out.in_features == 4 and model.eval().head(x, batch).tolist() == [[24.0]]


@pytest.mark.parametrize("kind, task", [("text", "table"), ("text_pair", "table")])
@pytest.mark.parametrize("mode", ["augmented", "gs"])
def test_it_trains_as_a_model_of_the_registry(stores, tmp_path, kind, task, mode):
    config = resolve(task, kind, mode=mode, model="cnn", kernel=[2, 3], filters=8, epochs=1, ensemble=2)
    metrics = run(stores[kind], tmp_path / "r", config)
    assert metrics["model"] == "cnn" and metrics["splits"]["val"]["all"]["n"] > 0
    from cftrain.evaluate import evaluate_run
    assert evaluate_run(tmp_path / "r", stores[kind], device="cpu")["splits"] == metrics["splits"]
