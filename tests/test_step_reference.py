"""The common training step, written out in `cftrain.step.training_step` (what `Method.step` runs, over
an ensemble with a member dimension), gives exactly the weights of the step before it: a single
model's step written out by hand below (the 0.1 trainer's `train_step`, without distributed
training), for every trained mode on the toy store, bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from cfpairs import open_store
from cftrain.data import PairBatches, load_split
from cftrain.gs import gs_loss
from cftrain.methods import METHODS, TRAINED, Method, method
from cftrain.models import make_model
from cftrain.ensemble import Single
from cftrain.labels import training_labels
from cftrain.presets import resolve
from cftrain.runtime import At, Run
from cftrain.step import training_step
from cftrain.train import make_optimizer


def reference_step(model, optimizer, batch, config, generator) -> None:
    """The step as it was: plain logits (B, C), the mean BCE, GS without a member dimension."""
    model.train()
    gs_on = "gs" in METHODS[config.mode].terms and config.gs_weight > 0
    x = model.encode(batch)
    found = model.data_head(x, batch) if gs_on and not x.requires_grad else None
    space = None
    if found is not None:
        logits, space = found
        space.known = batch.get("edge_distances")
    else:
        if gs_on and not x.requires_grad:
            x = x.detach().requires_grad_(True)
        logits = model.head(x, batch)
    loss = F.binary_cross_entropy_with_logits(logits, batch["targets"])
    if gs_on:
        term, _ = gs_loss(x, logits, batch["targets"], batch["edges"], "binary",
                          random=getattr(METHODS[config.mode], "random_relations", False),
                          generator=generator, constant_direction=x.grad_fn is None or config.gs_detach_target,
                          random_sign=config.get("random_sign", "partner"), space=space)
        loss = loss + config.gs_weight * term
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


# the reference knows the task loss and the GS term: every trained method made of no other term
@pytest.mark.parametrize("mode", [m for m in TRAINED if set(METHODS[m].terms) <= {"gs"}
                                  and METHODS[m].step is Method.step])  # SAM's own step: tests/test_sam.py
def test_the_step_equals_the_step_before_the_ensemble_path(toy, mode):
    with open_store(toy) as store:
        train = method(mode).training_rows(load_split(store, "train"), seed=0)
    config = resolve("toy", "vector", mode=mode, hidden=[8], strict=False)
    torch.manual_seed(0)
    model = make_model("mlp", input_dim=10, n_outputs=1, hidden=[8])
    before = copy.deepcopy(model)
    new_opt, old_opt = make_optimizer(config, model.parameters()), make_optimizer(config, before.parameters())
    g_new, g_old = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    run = Run(config, Single(model), training_labels("binary", config.loss, config), torch.device("cpu"), g_new,
              make_optimizer=lambda params: new_opt)
    trainer = method(mode)(run)
    for step, batch in enumerate(list(PairBatches(train, 64, seed=0))[:12], start=1):
        training_step(trainer, batch, At(1, step))
        reference_step(before, old_opt, batch, config, g_old)
    for (name, a), b in zip(model.state_dict().items(), before.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_leave_the_global_generator_alone(toy, workers):
    """Dropout draws from torch's global generator: a DataLoader that drew its workers' seed from it
    every epoch would change a model's masks (and results) between versions."""
    with open_store(toy) as store:
        train = load_split(store, "val")
    torch.manual_seed(0)
    state = torch.get_rng_state()
    batches = list(PairBatches(train, 64, seed=0).loader(workers))
    assert len(batches) > 1 and torch.equal(torch.get_rng_state(), state)
