"""Options reach their owner: every option a method, model, optimizer or loss declares is read by it
(a model's and a loss's as keywords of their constructors, a method's and an optimizer's from the
run's config), so a declared option can never be written to config.json and silently ignored.
Parametrised over the registries: a new part is checked without touching this file."""

from __future__ import annotations

import inspect

import pytest
import torch

from cfpairs import open_store
from cftrain.losses import LOSSES, make_loss
from cftrain.methods import METHODS
from cftrain.models import MODELS
from cftrain.optim import OPTIMIZERS, make_optimizer
from cftrain.presets import resolve
from cftrain.data import PairBatches, load_split
from cftrain.parts import RunParts
from cftrain.train import build_members

STORE_OF = {"vector": "vector", "text": "text", "text_pair": "text_pair", "regions": "regions"}
SMALL = {"ngram_buckets": 64}  # the models' sizes, not what an option changes (2**18 rows cost 0.1 s a model)


def other_value(option):
    """A valid value other than the option's default."""
    if option.kind is bool:
        return not option.default
    if option.allowed() is not None:
        return next(c for c in option.allowed() if c != option.default)
    if option.kind == "widths":
        return [3] if option.default != [3] else [5]
    if option.kind is int:
        return option.default + 1 if option.default is not None else int(option.low or 1) + 1
    if option.kind is float:
        value = 0.5 if option.default is None else option.default * 2
        return (option.default + option.high) / 2 if option.high is not None and value >= option.high else value
    raise AssertionError(f"no other value for {option.name}")


def model_options():
    return [(name, option) for name, cls in sorted(MODELS.items()) for option in cls.options]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_models_options_are_keywords_of_its_constructor(name):
    parameters = inspect.signature(MODELS[name].__init__).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in parameters.values()), "**kwargs would swallow an option"
    assert {o.name for o in MODELS[name].options} <= set(parameters)


STORE_SHAPES = {"self", "vocab_size", "n_outputs", "input_kind", "input_dim", "feature_dim", "vectors", "sparse"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_models_hyperparameters_are_options_with_their_defaults_stated_once(name):
    """Every constructor keyword but the store's shapes is a declared option (so config.json records
    it), and its default is the declaration's (the one place a default is stated)."""
    parameters = inspect.signature(MODELS[name].__init__).parameters
    declared = {o.name: o for o in MODELS[name].options}
    assert set(parameters) - STORE_SHAPES <= set(declared), "a hyperparameter that is not an option"
    for key, option in declared.items():
        default = parameters[key].default
        if option.name == "hidden" and name == "butd":  # [] (no width given) means butd's one usual width
            assert list(default) == [__import__("cftrain.models.butd").models.butd.WIDTH]
            continue
        assert (list(default) if isinstance(default, tuple) else default) == option.default, key


def vectors_file(path, vocab):
    path.write_text("".join(f"{word} " + " ".join(f"{(i * 7 + j) % 11 / 10:.1f}" for j in range(300)) + "\n"
                            for i, word in enumerate(vocab[2:])))
    return path


@pytest.mark.parametrize("name, option", model_options(), ids=lambda v: getattr(v, "name", v))
def test_every_model_option_changes_the_model(stores, tmp_path, name, option):
    path = stores[STORE_OF[MODELS[name].input_kinds[0]]]
    with open_store(path) as store:
        value = str(vectors_file(tmp_path / "v.txt", store.vocab)) if option.name == "embeddings" else \
            other_value(option)
        small = {k: v for k, v in SMALL.items() if k in {o.name for o in MODELS[name].options}}
        if option.name in small:
            value = small[option.name] + 1
        built = []
        for given in ({}, {option.name: value}):
            config = resolve(store.task, store.input_kind, mode="augmented", model=name, **{**small, **given})
            built.append(build_members(RunParts.of(config, store), store)[0])
        batch = next(iter(PairBatches(load_split(store, "train"), 16, seed=0)))
    default, other = (m.state_dict() for m in built)
    same = default.keys() == other.keys() and all(default[k].shape == other[k].shape and torch.equal(default[k], other[k])
                                                  for k in default)
    if same:  # an option without parameters of its own (dropout): it changes what the model computes
        outputs = []
        for model in built:
            torch.manual_seed(0)
            outputs.append(model.train()(batch))
        same = torch.equal(*outputs)
    assert not same, f"--{option.name} {value} builds the same {name} model as the default"


@pytest.mark.parametrize("mode", [m for m, cls in METHODS.items() if cls.options])
def test_every_method_option_is_read_by_a_step(stores, mode, monkeypatch):
    """Built for a run and stepped 12 times: an option read every few steps (a schedule) counts."""
    from cftrain.data import PairBatches, load_split
    from cftrain.ensemble import Single
    from cftrain.labels import training_labels
    from cftrain.methods import method
    from cftrain.presets import _ConfigMethods
    from cftrain.runtime import At, Run
    read = set()
    real_getattr, real_get = _ConfigMethods.__getattr__, _ConfigMethods.get
    monkeypatch.setattr(_ConfigMethods, "__getattr__", lambda self, k: read.add(k) or real_getattr(self, k))
    monkeypatch.setattr(_ConfigMethods, "get", lambda self, k, d=None: read.add(k) or real_get(self, k, d))
    with open_store(stores["text"]) as store:
        config = resolve(store.task, store.input_kind, mode=mode)
        members = build_members(RunParts.of(config, store), store)
        batch = next(iter(PairBatches(load_split(store, "train"), 16, seed=0)))
        read.clear()
        run = Run(config, Single(members[0]), training_labels(store.label_kind, config.loss, config),
                  torch.device("cpu"), torch.Generator().manual_seed(0))
        built = method(mode)(run)
        for step in range(1, 13):
            built.step(batch, At(1, step))
    assert {o.name for o in METHODS[mode].options} <= read, f"declared but never read: {METHODS[mode].options}"


@pytest.mark.parametrize("name, option", [(n, o) for n, spec in OPTIMIZERS.items() for o in spec.options],
                         ids=lambda v: getattr(v, "name", v))
def test_every_optimizer_option_reaches_the_optimizer(name, option):
    value = other_value(option)
    config = resolve("toy", "vector", mode="augmented", optimizer=name, **{option.name: value})
    optimizer = make_optimizer(config, [torch.nn.Parameter(torch.zeros(2))])
    assert optimizer.param_groups[0][option.name] == value


@pytest.mark.parametrize("name, option", [(n, o) for n, cls in LOSSES.items() for o in cls.options],
                         ids=lambda v: getattr(v, "name", v))
def test_every_loss_option_changes_the_loss(name, option):
    kind = LOSSES[name].serves[0]
    logits, targets = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(1)), torch.eye(3)[[0, 1, 2, 0]]
    default = make_loss(name, kind)(logits, targets)
    config = resolve("toy", "vector", mode="augmented", loss=name, **{option.name: other_value(option)})
    assert not torch.allclose(make_loss(name, kind, config)(logits, targets), default)
