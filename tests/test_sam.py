"""SAM (`cftrain/methods/sam.py`), the method that owns its step: its step equals SAM written out
by hand for one model (Foret et al.'s two passes), and each member of an ensemble moves by its own
gradient's norm (tests/test_ensemble.py runs it on every ensemble form; tests/test_distributed.py
under torchrun)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from cfpairs import open_store
from cftrain.data import PairBatches, load_split
from cftrain.ensemble import Vmapped
from cftrain.member_parts import member_norms, scale_members
from cftrain.models import make_model
from cftrain.presets import resolve
from cftrain.train import make_optimizer, train_step


def sam_by_hand(model, optimizer, batch, rho: float) -> None:
    """One SAM step: e = rho g / |g| over every parameter, the gradient at w + e, the step from w."""
    model.train()
    loss = F.binary_cross_entropy_with_logits(model(batch).view(-1, 1), batch["targets"])
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(loss, params)
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    moves = [rho * g / norm.float() for g in grads]
    with torch.no_grad():
        for p, e in zip(params, moves):
            p.add_(e)
    optimizer.zero_grad()
    F.binary_cross_entropy_with_logits(model(batch).view(-1, 1), batch["targets"]).backward()
    with torch.no_grad():
        for p, e in zip(params, moves):
            p.sub_(e)
    optimizer.step()


def test_the_step_is_sam_written_out_by_hand(toy):
    with open_store(toy) as store:
        train = load_split(store, "train")
    config = resolve("toy", "vector", mode="sam", hidden=[8], sam_rho=0.2, strict=False)
    torch.manual_seed(0)
    model = make_model("mlp", input_dim=10, n_outputs=1, hidden=[8])
    by_hand, plain = copy.deepcopy(model), copy.deepcopy(model)
    opt, hand_opt = make_optimizer(config, model.parameters()), make_optimizer(config, by_hand.parameters())
    for batch in list(PairBatches(train, 64, seed=0))[:8]:
        train_step(model, opt, batch, config, "binary")
        sam_by_hand(by_hand, hand_opt, batch, 0.2)
    for (name, a), b in zip(model.state_dict().items(), by_hand.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))


def test_member_norms_and_scaling_find_each_members_block():
    members = [make_model("mlp", input_dim=4, n_outputs=2, hidden=[3]) for _ in range(3)]
    fused = Vmapped(members)
    grads = {p: torch.randn_like(p) for p in fused.parameters()}
    norms = member_norms(fused.member_parts(), 3, grads)
    by_hand = torch.stack([torch.sqrt(sum((g[k].double() ** 2).sum() for g in grads.values())) for k in range(3)])
    assert torch.allclose(norms, by_hand)
    scaled = scale_members(fused.member_parts(), 3, grads, torch.tensor([1.0, 0.0, 2.0]))
    for p, g in grads.items():
        assert torch.equal(scaled[p][0], g[0]) and not scaled[p][1].any() and torch.equal(scaled[p][2], 2 * g[2])


def test_sam_refuses_rho_zero_with_its_own_message():
    from cfpairs.errors import UserError
    with pytest.raises(UserError, match=r"^--mode sam: --sam-rho must be above 0"):
        resolve("toy", "vector", mode="sam", sam_rho=0.0)
