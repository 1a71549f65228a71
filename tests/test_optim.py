"""LazyAdadelta: sparse embedding updates give dense torch.optim.Adadelta's result."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cftrain.models import make_model
from cftrain.optim import LazyAdadelta, _coalesced
from cftrain.presets import resolve
from cftrain.train import train_step


def test_lazy_adadelta_equals_dense_adadelta_over_many_steps():
    torch.manual_seed(0)
    dense = torch.nn.Embedding(50, 4, padding_idx=0)
    sparse = torch.nn.Embedding(50, 4, padding_idx=0, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    head = torch.randn(4)
    reference, lazy = torch.optim.Adadelta(dense.parameters(), lr=1.0), LazyAdadelta(sparse.parameters(), lr=1.0)
    rng = np.random.default_rng(0)
    for step in range(300):
        # a few rows per step, from a small pool: most rows sit untouched for many steps
        rows = torch.as_tensor(rng.choice(np.r_[0, rng.integers(1, 50, 6)], size=(3, 5)))
        for emb, opt in ((dense, reference), (sparse, lazy)):
            opt.zero_grad()
            loss = F.softplus(emb(rows).mean(1) @ head).sum()
            loss.backward()
            opt.step()
        assert sparse.weight.grad.is_sparse
    assert torch.allclose(sparse.weight, dense.weight, atol=1e-5, rtol=1e-4)
    lazy.settle()  # accumulators brought to the present equal the dense ones too
    for name in ("square_avg", "acc_delta"):
        assert torch.allclose(lazy.state[sparse.weight][name], reference.state[dense.weight][name], atol=1e-7,
                              rtol=1e-4)


def test_lazy_adadelta_dense_parameters_match_torch():
    torch.manual_seed(1)
    a, b = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = torch.optim.Adadelta(a.parameters(), lr=0.7), LazyAdadelta(b.parameters(), lr=0.7)
    for _ in range(50):
        x = torch.randn(8, 5)
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_gs_step_through_a_sparse_embedding_equals_the_dense_one():
    """GS differentiates twice; the sparse embedding must give the dense model's step."""
    torch.manual_seed(2)
    dense = make_model("bow", vocab_size=30, n_outputs=1)
    sparse = make_model("bow", vocab_size=30, n_outputs=1, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    config = resolve("imdb", "text", mode="gs", gs_weight=20.0)
    pairs = ((dense, torch.optim.Adadelta(dense.parameters())), (sparse, LazyAdadelta(sparse.parameters())))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        tokens = torch.randint(1, 30, (8, 6), generator=g)
        batch = {"tokens": tokens, "length": torch.full((8,), 6), "targets": torch.tensor([[1.0], [0.0]] * 4),
                 "edges": torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2]])}
        for model, optimizer in pairs:
            stats = train_step(model, optimizer, batch, config, "binary")
            assert stats["gs_rows"] > 0
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters()):
        assert torch.allclose(p, q, atol=1e-5), name


@pytest.mark.parametrize("optimizer,ensemble,vocab,sparse", [
    ("adadelta", 1, 600, True),    # 2 rows x 3 tokens = 6 tokens a batch: 6 <= 600
    ("adadelta", 1, 5, False),     # 6 > 5
    ("adadelta", 6, 1, True),      # six fused tables: 6 <= 6
    ("adam", 1, 600, False), ("adamax", 1, 600, False)])  # untouched rows move under these
def test_sparse_embeddings_only_where_exact_and_worth_it(optimizer, ensemble, vocab, sparse, stores):
    from cfpairs import open_store
    from cftrain.optim import optimizer_spec
    from cftrain.train import load_splits, sparse_pays
    with open_store(stores["text"]) as store:
        config = resolve(store.task, store.input_kind, optimizer=optimizer, lr=0.01, batch_size=2,
                         ensemble=ensemble)
        train = load_splits(store, config)["train"]
    assert float(train.inputs["length"].float().mean()) == 3.0  # "good film i" / "bad film i"
    assert sparse_pays(config, optimizer_spec(optimizer), train, vocab) is sparse


def test_sparse_gradients_sorted_or_not_give_the_coalesced_update():
    """Rows already strictly increasing skip the sort; unsorted or repeated rows are still summed."""
    torch.manual_seed(3)
    cases = {"sorted": (torch.tensor([1, 4, 7]), torch.randn(3, 2)),
             "repeated, unsorted": (torch.tensor([7, 1, 7, 4]), torch.randn(4, 2))}
    for label, (rows, values) in cases.items():
        grad = torch.sparse_coo_tensor(rows[None], values, (10, 2), check_invariants=True)
        assert not grad.is_coalesced()
        # increasing rows are taken as they are (no sorted copy of the values)
        shared = _coalesced(grad)._values().data_ptr() == grad._values().data_ptr()
        assert shared is (label == "sorted"), label
        params = [torch.nn.Parameter(torch.ones(10, 2)) for _ in range(2)]
        optimizers = [LazyAdadelta([p], lr=1.0) for p in params]
        for _ in range(3):
            params[0].grad, params[1].grad = grad.clone(), grad.to_dense()
            for opt in optimizers:
                opt.step()
        # the sparse one against its dense twin (LazyAdadelta's dense path is torch's AdaDelta)
        assert torch.allclose(params[0], params[1], atol=1e-7), label
        dense_sum = torch.zeros(10, 2).index_add_(0, rows, values)
        touched = dense_sum.abs().sum(1) > 0
        assert (params[0][touched] != 1).all() and (params[0][~touched] == 1).all(), label
