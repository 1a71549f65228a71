"""The BUTD model: masked attention, GS gradients on region features (finite differences,
double backward), GS through the GRU on every available device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cftrain.models.butd import BottomUpTopDown, masked_softmax
from cftrain.data import to_device
from cftrain.gs import gs_loss
from cftrain.presets import resolve
from cftrain.train import train_step
from tests.helpers import assert_space_gs_equals_input_gs


def small_model(dtype=torch.float64) -> BottomUpTopDown:
    torch.manual_seed(0)
    return BottomUpTopDown(vocab_size=7, n_outputs=3, feature_dim=5, hidden=[6], butd_embed_dim=4, butd_dropout=0.0).to(dtype)


def batch(dtype=torch.float64, n=4, regions=3) -> dict:
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(n, regions, dtype=torch.bool)
    mask[1, 0] = False  # row 1 is row 0's counterfactual: region 0 masked
    features = torch.randn(n, regions, 5, generator=g, dtype=dtype)
    features[1] = features[0]
    features[1, 0] = 0
    return {"features": features, "region_mask": mask, "tokens": torch.randint(2, 7, (n, 4), generator=g),
            "length": torch.tensor([4, 4, 2, 3]),
            "targets": torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0.6, 0], [0, 0, 1.0]], dtype=dtype),
            "edges": torch.tensor([[0, 1], [1, 0]])}


def test_masked_regions_get_exactly_zero_attention():
    scores = torch.randn(3, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False, False, False, False], [True, True, True, True]])
    weights = masked_softmax(scores, mask)
    assert (weights[~mask] == 0).all()
    assert torch.allclose(weights[0].sum(), torch.tensor(1.0)) and torch.allclose(weights[2].sum(), torch.tensor(1.0))
    assert (weights[1] == 0).all() and torch.isfinite(weights).all()  # nothing kept: no weight, no NaN
    weights[0, 2].backward()
    assert scores.grad[0, 1] == 0 and torch.isfinite(scores.grad).all()
    model, b = small_model(), batch()
    q = model.question(b["tokens"], b["length"])
    att = model.attention(model.att_v(b["features"]), q, b["region_mask"])
    assert att[1, 0] == 0 and torch.allclose(att.sum(1), torch.ones(4, dtype=att.dtype))


def test_input_gradient_matches_finite_differences():
    model, b = small_model(), batch()
    model.eval()
    v = b["features"].clone().requires_grad_(True)
    logit = lambda feats: model.head(feats, b)[0, 0]
    (grad,) = torch.autograd.grad(logit(v), v)
    numeric = torch.zeros_like(v)
    eps = 1e-6
    for index in np.ndindex(*v.shape):
        bumped = v.detach().clone()
        bumped[index] += eps
        up = logit(bumped)
        bumped[index] -= 2 * eps
        numeric[index] = (up - logit(bumped)) / (2 * eps)
    assert torch.allclose(grad, numeric, atol=1e-7)
    assert (grad[1:] == 0).all()  # row 0's logit does not depend on other rows: no mixing within a batch


def test_gs_loss_double_backward_through_the_model():
    model, b = small_model(), batch()
    model.eval()

    def gs_of(feats):
        return gs_loss(feats, model.head(feats, b), b["targets"], b["edges"], "soft")[0]

    assert torch.autograd.gradcheck(gs_of, (b["features"].clone().requires_grad_(True),), eps=1e-6, atol=1e-5)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                  reason="needs a CUDA device"))]


@pytest.mark.parametrize("device", DEVICES)
def test_gs_step_trains_the_gru(device):
    """A GS step differentiates through the GRU twice: it must run (on CUDA too, where cuDNN's RNN
    cannot) and the GS term alone must reach the GRU's weights."""
    model, b = small_model(torch.float32).to(device), to_device(batch(torch.float32), device)
    config = resolve("toy-vqa", "regions", mode="gs", gs_weight=50.0)
    before = model.gru.weight_hh_l0.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    stats = train_step(model, optimizer, b, config, "soft")
    assert stats["gs_rows"] == 2 and np.isfinite(stats["gs"])
    assert not torch.equal(before, model.gru.weight_hh_l0)
    model.zero_grad()
    v = b["features"].clone().requires_grad_(True)
    term, _ = gs_loss(v, model.head(v, b), b["targets"], b["edges"], "soft")
    term.backward()
    assert model.gru.weight_hh_l0.grad.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_without_the_switch_cudnn_refuses_the_gs_step():
    """The control: left on cuDNN, the same GS step fails, so the switch above is what makes it work."""
    model, b = small_model(torch.float32).to("cuda"), to_device(batch(torch.float32), "cuda")
    model.set_double_backward = lambda enabled: None  # never leaves cuDNN
    config = resolve("toy-vqa", "regions", mode="gs", gs_weight=50.0)
    with pytest.raises(RuntimeError):
        train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), b, config, "soft")


@pytest.mark.parametrize("edges", [[[0, 1], [1, 0], [2, 3], [3, 2]], [[1, 0], [0, 1], [0, 2], [3, 1]]])
def test_gs_in_the_projections_space_equals_gs_on_the_features(edges):
    """data_head's RegionSpace (g = W^T d_r + a_r u never formed) gives the loss and every
    parameter's gradient of differentiating back to the features, for pairs in row order and for
    edges in any order (rows with several edges, partners outside their own pair)."""
    model, b = small_model(), batch()
    b["targets"][2:] = torch.tensor([[0, 0.6, 0], [0, 0, 0]], dtype=torch.float64)
    edges = torch.tensor(edges)
    assert_space_gs_equals_input_gs(model, b["features"], b, b["targets"], edges, "soft", atol=1e-10)
