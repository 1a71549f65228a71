"""Every ensemble form (a model's hand-fused form, the generic vmapped form, members in turn,
members over one shared embedding table) equals N separately built members fed the same batches:
weights and logits after several steps, GS on; and a model no code knows trains as a fused ensemble
through the generic form."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from torch import nn

from cftrain.ensemble import FusedEnsemble, Sequential, SharedTables, Vmapped, learned_tables, make_ensemble
from cftrain.models import PairModel, make_model
from cftrain.presets import resolve
from cftrain.train import make_optimizer, train_step
from tests.helpers import covering

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
          "nli-bow": dict(vocab_size=40, n_outputs=3, vectors=VECTORS, nli_width=7, nli_projection=4),
          "nli-bow-learned": dict(vocab_size=40, n_outputs=3, nli_width=7, nli_projection=4, sparse=True),
          "mlp": dict(input_dim=9, n_outputs=4, hidden=[5, 3]), "mlp-linear": dict(input_dim=9, n_outputs=4)}
KIND = {"bow": "binary", "nli-bow": "multiclass", "mlp": "multilabel"}
TASK = {"bow": "imdb", "nli-bow": "snli", "mlp": "coco"}


FORMS = {"hand": lambda members: make_ensemble(members), "vmap": Vmapped, "sequential": Sequential,
         "shared": SharedTables}
CASES = [(v, "hand") for v in sorted(KWARGS)] + [("mlp", "vmap"), ("mlp-linear", "vmap"), ("bow-dense", "vmap"),
                                                  ("mlp", "sequential"), ("nli-bow", "sequential"), ("bow", "shared"),
                                                  ("bow-dense", "shared"), ("nli-bow-learned", "shared")]
KWARGS["bow-dense"] = dict(vocab_size=40, n_outputs=1)


def check_equal_to_separate_members(name: str, members: list, ensemble, mode: str) -> None:
    alone = copy.deepcopy(members)
    config = resolve(TASK.get(name, "coco"), mode=mode, gs_weight=5.0, strict=False)
    ensemble_opt = make_optimizer(config, ensemble.parameters())
    alone_opts = [make_optimizer(config, m.parameters()) for m in alone]
    # random relations: every member sees the same random partners, drawn from one generator each step
    g_ensemble, g_alone = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for batch in batches(name):
        stats = train_step(ensemble, ensemble_opt, batch, config, KIND.get(name, "multilabel"), g_ensemble)
        state = g_alone.get_state()
        alone_stats = []
        for model, opt in zip(alone, alone_opts):
            g_alone.set_state(state)
            alone_stats.append(train_step(model, opt, batch, config, KIND.get(name, "multilabel"), g_alone))
        assert stats["task_loss"] == pytest.approx(sum(s["task_loss"] for s in alone_stats) / N, rel=1e-5)
        assert stats.get("gs_rows", 0) == sum(s.get("gs_rows", 0) for s in alone_stats)
        assert (stats.get("gs_rows", 0) > 0) == mode.startswith("gs")
    for a, b in zip(ensemble.unfuse(), alone):
        for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.allclose(p, q, atol=1e-5), key
    batch = next(batches(name, 1))
    ensemble.eval()
    for m in alone:
        m.eval()
    with torch.no_grad():
        expected = torch.stack([m(batch) for m in alone]).mean(0)
        assert torch.allclose(ensemble(batch), expected.view_as(ensemble(batch)), atol=1e-5)


@pytest.mark.filterwarnings("ignore:nli-bow without --embeddings")
@pytest.mark.parametrize("variant, form, mode",  # sam: each member's own norm
                         covering(CASES, ["gs", "gs-random", "augmented", "sam"]))
def test_every_ensemble_form_equals_separate_members(variant, form, mode):
    name = variant.replace("-learned", "").replace("-linear", "").replace("-dense", "")
    members = []
    for k in range(N):
        torch.manual_seed(10 + k)
        members.append(make_model(name, **KWARGS[variant]))
    ensemble = FORMS[form](members)
    if form == "hand":
        assert isinstance(ensemble, FusedEnsemble)  # bow, nli-bow and mlp keep their hand-fused forms
    check_equal_to_separate_members(name, members, ensemble, mode)


class Bilinear(PairModel):
    """A model no module of cftrain knows (not registered): x -> tanh(W x) * x -> linear."""
    input_kinds = ("vector",)

    def __init__(self, input_dim=9, n_outputs=4):
        super().__init__()
        self.w, self.out = nn.Linear(input_dim, input_dim), nn.Linear(input_dim, n_outputs)

    def encode(self, batch):
        return batch["x"]

    def head(self, x, batch):
        return self.out(torch.tanh(self.w(x)) * x)


@pytest.mark.parametrize("mode", ["gs", "augmented"])
def test_a_new_model_trains_as_a_fused_ensemble_without_code_of_its_own(mode):
    members = []
    for k in range(N):
        torch.manual_seed(20 + k)
        members.append(Bilinear())
    ensemble = make_ensemble(members)
    assert isinstance(ensemble, Vmapped)
    check_equal_to_separate_members("mlp", members, ensemble, mode)


# ---------------------------------------------------------------- every registered model, every form it has


def kind_batches(input_kind: str, steps: int = 4):
    """Batches of 3 pairs (one-hot targets over 3 classes, each pair changing its class) for any input kind."""
    g = torch.Generator().manual_seed(1)
    edges = torch.tensor([[0, 1], [1, 0], [2, 3], [3, 2], [4, 5], [5, 4]])
    for _ in range(steps):
        batch = {"targets": torch.eye(3)[[0, 1, 2, 0, 1, 2]], "edges": edges}
        tokens = lambda width: (torch.randint(2, 40, (6, width), generator=g), torch.tensor([5, 4, 3, 5, 2, 5]))
        if input_kind == "vector":
            batch["x"] = torch.randn(6, 9, generator=g)
        if input_kind in ("text", "regions"):
            batch["tokens"], batch["length"] = tokens(5)
        if input_kind == "text_pair":
            for side in ("premise", "hypothesis"):
                batch[f"{side}_tokens"], batch[f"{side}_length"] = tokens(5)
        if input_kind == "regions":
            mask = torch.ones(6, 4, dtype=torch.bool)
            mask[1::2, 0] = False
            batch["features"] = torch.randn(6, 4, 5, generator=g) * mask[..., None]
            batch["region_mask"] = mask
        yield batch


SHAPES = dict(vocab_size=40, n_outputs=3, input_dim=9, feature_dim=5)
SMALL = {"hidden": [5], "ngram_buckets": 64, "filters": 4, "nli_embed_dim": 8, "butd_embed_dim": 8}  # sizes, not forms


def registered_forms():
    from cftrain.models import MODELS
    for name, cls in sorted(MODELS.items()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a model's notes while it is built to be looked at
            shared = ["shared"] if learned_tables(make_model(name, **SHAPES)) else []
        forms = ["sequential"] + (["hand"] if cls.fused is not None else []) + (["vmap"] if cls.vmappable else []) + shared
        yield from ((name, form) for form in forms)


@pytest.mark.filterwarnings("ignore:nli-bow without --embeddings")
@pytest.mark.parametrize("name, form, mode", covering(list(registered_forms()), ["gs", "augmented", "sam"]))
def test_every_registered_model_trains_as_its_members_would(name, form, mode):
    """A new model is checked here without a line of its own: each of its ensemble forms equals N members."""
    from cftrain.models import MODELS
    cls = MODELS[name]
    own = {o.name: SMALL[o.name] for o in cls.options if o.name in SMALL}
    members = []
    for k in range(N):
        torch.manual_seed(30 + k)
        members.append(make_model(name, **SHAPES, **own))
        for layer in members[-1].modules():  # dropout draws from one generator: the members' turns would differ
            if isinstance(layer, nn.Dropout):
                layer.p = 0.0
    ensemble = FORMS[form](members)
    alone = copy.deepcopy(members)
    config = resolve("table", cls.input_kinds[0], mode=mode, model=name, strict=False, gs_weight=5.0)
    ensemble_opt = make_optimizer(config, ensemble.parameters())
    alone_opts = [make_optimizer(config, m.parameters()) for m in alone]
    for batch in kind_batches(cls.input_kinds[0]):
        stats = train_step(ensemble, ensemble_opt, batch, config, "multiclass")
        alone_stats = [train_step(m, o, batch, config, "multiclass") for m, o in zip(alone, alone_opts)]
        assert stats["task_loss"] == pytest.approx(sum(s["task_loss"] for s in alone_stats) / N, rel=1e-4)
    for a, b in zip(ensemble.unfuse(), alone):
        for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.allclose(p, q, atol=1e-4), key


@pytest.mark.parametrize("slow", ["vmapped", "sequential"])
def test_the_generic_form_is_the_faster_and_choosing_changes_nothing(monkeypatch, slow):
    """A new model trains as the faster of its generic forms (never a trap: the members in turn cost
    at most N members), chosen on the first batch without touching a weight."""
    import time as clock
    from cftrain.ensemble import checked_on
    from cftrain.step import forward
    members = []
    for k in range(N):
        torch.manual_seed(40 + k)
        members.append(Bilinear())
    before = [copy.deepcopy(m.state_dict()) for m in members]
    cls = Vmapped if slow == "vmapped" else Sequential
    real = cls.encode
    monkeypatch.setattr(cls, "encode", lambda self, batch: clock.sleep(0.02) or real(self, batch))
    chosen = checked_on(make_ensemble(members), next(batches("mlp", 1)), True, forward)
    assert isinstance(chosen, Sequential if slow == "vmapped" else Vmapped)
    for m, state in zip(members, before):
        assert all(torch.equal(m.state_dict()[k], v) for k, v in state.items())
        assert all(p.grad is None for p in m.parameters())


@pytest.mark.parametrize("slow", ["shared", "sequential"])
def test_a_model_with_learned_tables_may_train_over_one_shared_table(monkeypatch, slow):
    """A text model without a hand-fused form (bow's set aside: sparse embeddings, no vmap rule) is
    timed as members in turn and as members over one shared table; the faster is kept, the members
    untouched, and training through it writes every member's own columns back (`unfuse`)."""
    import time as clock
    from cftrain.ensemble import checked_on
    from cftrain.step import forward
    from cftrain.models.bow import BagOfWords
    monkeypatch.setattr(BagOfWords, "fused", None)
    members = []
    for k in range(N):
        torch.manual_seed(50 + k)
        members.append(make_model("bow", **KWARGS["bow"]))
    before = [copy.deepcopy(m.state_dict()) for m in members]
    real = Sequential.encode
    slowed = SharedTables if slow == "shared" else Sequential
    monkeypatch.setattr(Sequential, "encode",
                        lambda self, batch: (type(self) is slowed and clock.sleep(0.02)) or real(self, batch))
    with pytest.warns(UserWarning, match="vmap cannot run it"):
        chosen = checked_on(make_ensemble(members), next(batches("bow", 1)), True, forward)
    assert type(chosen) is (Sequential if slow == "shared" else SharedTables)
    for m, state in zip(members, before):
        assert all(torch.equal(m.state_dict()[k], v) for k, v in state.items())
        assert all(p.grad is None for p in m.parameters())
    if slow == "sequential":
        check_equal_to_separate_members("bow", members, chosen, "gs")
