"""The GS loss against hand-computed values on linear models, for every label kind."""

import numpy as np
import pytest
import torch

from cftrain import gs
from cftrain.gs import gs_loss
from cftrain.gs_space import first_layer
from cftrain.models import make_model
from tests.helpers import assert_space_gs_equals_input_gs


def cos(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def linear(x, weight):
    x = x.clone().requires_grad_(True)
    return x, x @ weight.T


X = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 2.0]])


def test_binary_linear_model_g_is_the_weight_vector():
    w = torch.tensor([[0.3, -0.2, 0.9]])
    x, logits = linear(X, w)
    targets = torch.tensor([[0.0], [1.0]])
    loss, stats = gs_loss(x, logits, targets, torch.tensor([1, 0]), "binary")
    d = (X[1] - X[0]).numpy()
    # row 0: sign(1 - 0) (x1 - x0); row 1: sign(0 - 1) (x0 - x1) = x1 - x0; g = w for both
    assert loss.item() == pytest.approx(1 - cos(w[0], d), abs=1e-6)
    assert stats["rows"] == 2


def test_binary_sign_flips_with_the_labels():
    w = torch.tensor([[0.3, -0.2, 0.9]])
    x, logits = linear(X, w)
    loss, _ = gs_loss(x, logits, torch.tensor([[1.0], [0.0]]), torch.tensor([1, 0]), "binary")
    assert loss.item() == pytest.approx(1 - cos(w[0], (X[0] - X[1]).numpy()), abs=1e-6)


def test_multiclass_uses_each_rows_own_class_with_the_sign_rule():
    w = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
    x, logits = linear(X, w)
    targets = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])  # row 0 class 0, row 1 class 2
    loss, _ = gs_loss(x, logits, targets, torch.tensor([1, 0]), "multiclass")
    d = (X[1] - X[0]).numpy()
    # row 0: c=0, y_1[0]-y_0[0] = -1 -> t = -(x1-x0); row 1: c=2, y_0[2]-y_1[2] = -1 -> t = -(x0-x1)
    expected = np.mean([1 - cos(w[0], -d), 1 - cos(w[2], d)])
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_soft_counterfactual_without_answer_uses_the_originals_answer():
    w = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    x, logits = linear(X, w)
    targets = torch.tensor([[0, 0.3, 0, 1.0], [0, 0, 0, 0]])  # original's top answer 3; cf empty
    loss, _ = gs_loss(x, logits, targets, torch.tensor([1, 0]), "soft")
    d = (X[0] - X[1]).numpy()
    # row 0: c=3, sign(0 - 1) (x1 - x0) = x0 - x1; row 1: c=3 (the original's), sign(1 - 0) (x0 - x1)
    assert loss.item() == pytest.approx(1 - cos(w[3], d), abs=1e-6)


def test_multilabel_uses_every_differing_class():
    w = torch.randn(3, 3, generator=torch.Generator().manual_seed(2))
    x, logits = linear(X, w)
    one_removed = torch.tensor([[1.0, 1.0, 0], [1.0, 0, 0]])
    loss, _ = gs_loss(x, logits, one_removed, torch.tensor([1, 0]), "multilabel")
    d = (X[1] - X[0]).numpy()
    assert loss.item() == pytest.approx(1 - cos(-w[1], d), abs=1e-6)  # both rows: the removed class 1
    several = torch.tensor([[1.0, 1.0, 0], [0, 0, 1.0]])
    x, logits = linear(X, w)
    loss, _ = gs_loss(x, logits, several, torch.tensor([1, 0]), "multilabel")
    g0 = (-w[0] - w[1] + w[2]).numpy()  # signed sum over the differing classes
    assert loss.item() == pytest.approx(1 - cos(g0, d), abs=1e-6)


def test_zero_norm_rows_are_skipped_without_nans():
    w = torch.tensor([[0.3, -0.2, 0.9]])
    same = torch.stack([X[0], X[0], X[0], X[1]])
    x, logits = linear(same, w)
    targets = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    loss, stats = gs_loss(x, logits, targets, torch.tensor([1, 0, 3, 2]), "binary")
    assert stats["rows"] == 2  # rows 0-1 have t = 0
    assert loss.item() == pytest.approx(1 - cos(w[0], (X[1] - X[0]).numpy()), abs=1e-6)
    x, logits = linear(same[:2], w)
    loss, stats = gs_loss(x, logits, targets[:2], torch.tensor([1, 0]), "binary")
    loss.backward()
    assert stats["rows"] == 0 and loss.item() == 0.0 and torch.isfinite(x.grad).all()
    x, logits = linear(X, torch.zeros(1, 3))  # g = 0
    loss, stats = gs_loss(x, logits, torch.tensor([[0.0], [1.0]]), torch.tensor([1, 0]), "binary")
    assert stats["rows"] == 0 and not torch.isnan(loss)


def test_one_autograd_grad_call_per_batch(monkeypatch):
    calls = []
    real = torch.autograd.grad
    monkeypatch.setattr(gs.torch.autograd, "grad", lambda *a, **k: calls.append(k) or real(*a, **k))
    x = torch.randn(8, 5, requires_grad=True)
    logits = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))(x)
    targets = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])]
    gs_loss(x, logits, targets, torch.tensor([1, 0, 3, 2, 5, 4, 7, 6]), "multiclass")
    assert len(calls) == 1 and calls[0]["create_graph"] is True


def test_random_relations_pair_each_row_with_another_row():
    edges = gs.random_edges(10, torch.Generator().manual_seed(0))
    assert edges.shape == (10, 2) and (edges[:, 0] != edges[:, 1]).all()
    assert edges[:, 0].tolist() == list(range(10))


def test_a_step_on_the_gs_term_alone_raises_the_mean_cosine():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x0 = torch.randn(32, 6)
    x_cf = x0.clone()
    x_cf[:, 0] = -x_cf[:, 0]
    data = torch.cat([x0, x_cf])
    targets = torch.cat([(x0[:, :1] > 0).float(), (x_cf[:, :1] > 0).float()])
    partner = torch.cat([torch.arange(32, 64), torch.arange(32)])
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)

    def cosine():
        x = data.clone().requires_grad_(True)
        loss, stats = gs_loss(x, net(x), targets, partner, "binary")
        return loss, stats["cosine"]

    loss, before = cosine()
    for _ in range(5):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss, after = cosine()
    assert after > before + 0.05


def test_constant_direction_gives_the_same_parameter_gradients_for_data_inputs():
    """For raw-input GS spaces t is data: dropping its graph changes no parameter's gradient."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    x = torch.randn(6, 4)
    targets = torch.tensor([[1.0], [0.0]] * 3)
    grads = []
    for constant in (False, True):
        net.zero_grad()
        leaf = x.clone().requires_grad_(True)
        loss, _ = gs_loss(leaf, net(leaf), targets, torch.tensor([1, 0, 3, 2, 5, 4]), "binary",
                          constant_direction=constant)
        loss.backward()
        grads.append([torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-7)


@pytest.mark.parametrize("hidden, kind, classes", [([5, 4], "multilabel", 3), ([], "binary", 1),
                                                   ([6], "multiclass", 3)])
def test_gs_in_the_first_layers_output_space_equals_gs_on_the_inputs(hidden, kind, classes):
    """mlp on data inputs: g = W^T d is never formed (g . t = d . (z_j - z_i), |g|^2 = d^T W W^T d);
    the loss and every parameter's gradient equal differentiating back to the inputs."""
    torch.manual_seed(0)
    model = make_model("mlp", input_dim=7, n_outputs=classes, hidden=hidden)
    data = torch.randn(8, 7)
    if kind == "multilabel":
        targets = (torch.rand(8, classes) < 0.5).float()
        targets[1::2] = targets[0::2]
        targets[1::2, 0] = 1 - targets[0::2, 0]
    elif kind == "binary":
        targets = torch.tensor([[1.0], [0.0]] * 4)
    else:
        targets = torch.eye(classes)[torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])]
    partner = torch.tensor([1, 0, 3, 2, 5, 4, 7, 6])
    assert_space_gs_equals_input_gs(model, data, {}, targets, partner, kind, atol=1e-6)


def test_edge_distances_in_chunks_equal_the_direct_norms():
    values = torch.randn(300, 9, generator=torch.Generator().manual_seed(0))
    edges = torch.randint(0, 300, (200, 2), generator=torch.Generator().manual_seed(1))
    direct = (values[edges[:, 1]] - values[edges[:, 0]]).norm(dim=1)
    assert torch.allclose(gs.edge_distances(values, edges, chunk=7), direct, atol=1e-6)


@pytest.mark.parametrize("members", [1, 3])
def test_first_layer_and_gram_gradients_equal_autograd_on_the_plain_formulas(members):
    g = torch.Generator().manual_seed(2)
    raw, linear = torch.randn(5, 7, generator=g), torch.nn.Linear(7, 4 * members)
    out, gram = first_layer(raw, linear, members)
    up_out, up_gram = torch.randn(out.shape, generator=g), torch.randn(gram.shape, generator=g)
    ((out * up_out).sum() + (gram * up_gram).sum()).backward()
    fused = linear.weight.grad.clone(), linear.bias.grad.clone()
    weight, bias = linear.weight.detach().clone().requires_grad_(), linear.bias.detach().clone().requires_grad_()
    plain_out = (raw @ weight.T + bias).view(out.shape)
    blocks = weight.view(members, 4, 7)
    plain_gram = blocks @ blocks.transpose(1, 2)
    assert torch.allclose(out, plain_out, atol=1e-6) and torch.allclose(gram, plain_gram, atol=1e-6)
    ((plain_out * up_out).sum() + (plain_gram * up_gram).sum()).backward()
    assert torch.allclose(fused[0], weight.grad, atol=1e-5) and torch.allclose(fused[1], bias.grad, atol=1e-6)


def test_each_row_keeps_its_first_edges_class_and_drops_edges_needing_another():
    # row 0 has three edges: to 1 (class 0, sign +1), to 2 (same class and sign), to 3 (class 1)
    weights = torch.tensor([[1.0, 0], [-1, 0], [1, 0], [0, 1], [0, 0]])
    edges = torch.tensor([[0, 1], [1, 0], [0, 2], [0, 3], [2, 0]])
    row_weights, kept = gs.rows_classes(weights, edges, 4)
    assert row_weights.tolist() == [[1, 0], [-1, 0], [0, 0], [0, 0]]  # row 2's only edge has no class
    assert kept.tolist() == [True, True, True, False, False]


def test_distances_known_in_advance_give_the_same_term_and_are_ignored_for_random_relations():
    torch.manual_seed(0)
    model = make_model("mlp", input_dim=6, n_outputs=1, hidden=[5])
    data, targets = torch.randn(6, 6), torch.tensor([[1.0], [0.0]] * 3)
    partner = torch.tensor([1, 0, 3, 2, 5, 4])
    edges = gs.as_edges(partner)
    known = (data[edges[:, 1]] - data[edges[:, 0]]).norm(dim=1)
    terms = []
    for random, distances in ((False, None), (False, known), (True, None), (True, known * 7)):
        logits, space = model.data_head(data, {})
        space.known = distances
        terms.append(gs_loss(data, logits, targets, partner, "binary", random=random,
                             generator=torch.Generator().manual_seed(1), space=space)[0])
    assert terms[0].item() == pytest.approx(terms[1].item(), abs=1e-6)
    assert terms[2].item() == pytest.approx(terms[3].item(), abs=1e-6)


def _snli_like_group():
    """One original (class 0) with an edit to class 1 and an edit to class 2, both directions."""
    targets = torch.eye(3)[torch.tensor([0, 1, 2])]
    edges = torch.tensor([[0, 1], [1, 0], [0, 2], [2, 0]])
    return targets, edges


def test_partner_class_supervises_each_edits_own_class_on_a_linear_model():
    w = torch.tensor([[0.3, -0.2, 0.9], [1.0, 0.5, -0.4], [-0.7, 0.2, 0.1]])
    data = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 2.0], [2.0, 0.0, 1.0]])
    targets, edges = _snli_like_group()
    x, logits = linear(data, w)
    loss, stats = gs_loss(x, logits, targets, edges, "multiclass", partner_class=True)
    d = data.numpy()
    # (i, j) -> g = W[class of j] (sign +1: j has its class, i has not), t = x_j - x_i
    expected = [1 - cos(w[j], d[j] - d[i]) for i, j in edges.tolist()]
    assert stats["rows"] == 4 and loss.item() == pytest.approx(np.mean(expected), abs=1e-6)
    x, logits = linear(data, w)
    own, stats = gs_loss(x, logits, targets, edges, "multiclass")
    # own: g = W[class of i], sign -1 (j lacks i's class)
    expected_own = [1 - cos(w[i], -(d[j] - d[i])) for i, j in edges.tolist()]
    assert stats["rows"] == 4 and own.item() == pytest.approx(np.mean(expected_own), abs=1e-6)


def test_partner_class_equals_one_gradient_per_edge_by_brute_force():
    """A nonlinear model: each edge's g computed on its own (one autograd.grad per edge) gives the same
    term and the same parameter gradients as the rounds (one autograd.grad per class a row needs)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    data = torch.randn(3, 4)
    targets, edges = _snli_like_group()
    x = data.clone().requires_grad_(True)
    loss, stats = gs_loss(x, net(x), targets, edges, "multiclass", partner_class=True)
    rounds = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True, materialize_grads=True)
    terms = []
    for i, j in edges.tolist():
        x = data.clone().requires_grad_(True)
        g = torch.autograd.grad(net(x)[i, targets[j].argmax()], x, create_graph=True)[0][i]
        terms.append(1 - torch.nn.functional.cosine_similarity(g, data[j] - data[i], dim=0))
    reference = torch.stack(terms).mean()
    brute = torch.autograd.grad(reference, list(net.parameters()), allow_unused=True, materialize_grads=True)
    assert stats["rows"] == 4 and loss.item() == pytest.approx(reference.item(), abs=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(rounds, brute))


def test_partner_class_takes_one_autograd_grad_per_class_a_row_needs(monkeypatch):
    calls = []
    real = torch.autograd.grad
    monkeypatch.setattr(gs.torch.autograd, "grad", lambda *a, **k: calls.append(k) or real(*a, **k))
    targets, edges = _snli_like_group()
    x = torch.randn(3, 4, requires_grad=True)
    gs_loss(x, torch.nn.Linear(4, 3)(x), targets, edges, "multiclass", partner_class=True)
    assert len(calls) == 2  # row 0 needs classes 1 and 2; rows 1 and 2 need class 0 in the first round
