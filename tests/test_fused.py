"""A fused ensemble (members stacked, one pass) equals N separately built members fed the same
batches: weights and logits after several steps, GS on, for every model with a fused form."""

from __future__ import annotations

import copy

import pytest
import torch

from cftrain.fused import FUSED, fuse
from cftrain.models import make_model
from cftrain.optim import make_optimizer
from cftrain.presets import resolve
from cftrain.train import train_step

N = 3


def batches(name: str, steps: int = 6):
    g = torch.Generator().manual_seed(0)
    edges = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2], [4, 5], [5, 4]])
    for _ in range(steps):
        targets = torch.tensor([[1.0], [0.0]] * 3)
        if name == "nli-bow":
            yield {"premise_tokens": torch.randint(1, 40, (6, 5), generator=g),
                   "premise_length": torch.tensor([5, 4, 3, 5, 2, 5]),
                   "hypothesis_tokens": torch.randint(1, 40, (6, 4), generator=g),
                   "hypothesis_length": torch.tensor([4, 4, 2, 3, 4, 1]),
                   "targets": torch.eye(3)[[0, 1, 2, 0, 1, 2]], "edges": edges}
        elif name == "mlp":
            labels = (torch.rand(6, 4, generator=g) < 0.5).float()
            labels[1::2] = labels[0::2]
            labels[1::2, 0] = 1 - labels[0::2, 0]  # each pair differs in class 0
            yield {"x": torch.randn(6, 9, generator=g), "targets": labels, "edges": edges}
        else:
            yield {"tokens": torch.randint(1, 40, (6, 7), generator=g), "length": torch.tensor([7, 5, 6, 7, 3, 4]),
                   "targets": targets, "edges": edges}


VECTORS = torch.randn(40, 6, generator=torch.Generator().manual_seed(3))
KWARGS = {"bow": dict(vocab_size=40, n_outputs=1, sparse=True),
          "nli-bow": dict(vocab_size=40, n_outputs=3, vectors=VECTORS, width=7, dim=4),
          "nli-bow-learned": dict(vocab_size=40, n_outputs=3, width=7, dim=4, sparse=True),
          "mlp": dict(input_dim=9, n_outputs=4, hidden=[5, 3]), "mlp-linear": dict(input_dim=9, n_outputs=4)}
KIND = {"bow": "binary", "nli-bow": "multiclass", "mlp": "multilabel"}
TASK = {"bow": "imdb", "nli-bow": "snli", "mlp": "coco"}


@pytest.mark.filterwarnings("ignore:nli-bow without --embeddings")
@pytest.mark.parametrize("variant", sorted(KWARGS))
@pytest.mark.parametrize("mode", ["gs", "gs-random", "augmented"])
def test_fused_ensemble_equals_separate_members(variant, mode):
    name = variant.replace("-learned", "").replace("-linear", "")
    assert name in FUSED
    assert set(FUSED) == {"bow", "nli-bow", "mlp"}  # butd trains its members one after another
    members = []
    for k in range(N):
        torch.manual_seed(10 + k)
        members.append(make_model(name, **KWARGS[variant]))
    alone = copy.deepcopy(members)
    fused = fuse(name, members)
    config = resolve(TASK[name], mode=mode, gs_weight=5.0)
    fused_opt = make_optimizer(config.optimizer, fused.parameters(), config.lr)
    alone_opts = [make_optimizer(config.optimizer, m.parameters(), config.lr) for m in alone]
    # random relations: every member sees the same random partners, drawn from one generator each step
    g_fused, g_alone = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for batch in batches(name):
        stats = train_step(fused, fused_opt, batch, config, KIND[name], g_fused)
        state = g_alone.get_state()
        alone_stats = []
        for model, opt in zip(alone, alone_opts):
            g_alone.set_state(state)
            alone_stats.append(train_step(model, opt, batch, config, KIND[name], g_alone))
        assert stats["task_loss"] == pytest.approx(sum(s["task_loss"] for s in alone_stats) / N, rel=1e-5)
        assert stats["gs_rows"] == sum(s["gs_rows"] for s in alone_stats)
        assert (stats["gs_rows"] > 0) == (mode != "augmented")
    for a, b in zip(fused.unfuse(), alone):
        for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.allclose(p, q, atol=1e-5), key
    batch = next(batches(name, 1))
    fused.eval()
    for m in alone:
        m.eval()
    with torch.no_grad():
        ensemble = torch.stack([m(batch) for m in alone]).mean(0)
        assert torch.allclose(fused(batch), ensemble, atol=1e-5)
