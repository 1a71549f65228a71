"""Resolved run options: defaults per store task (the paper's values), then the user's overrides."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from cfpairs.errors import UserError
from cftrain.gs import RANDOM_SIGNS
from cftrain.methods import method
from cftrain.vectors import check_embeddings
from cftrain.models import check_model


@dataclass
class RunConfig:
    mode: str = "gs"
    model: str = "mlp"
    gs_weight: float = 1.0
    ensemble: int = 1
    epochs: int = 50
    patience: int = 10
    batch_size: int = 64
    lr: float = 1.0              # AdaDelta's own scale: 1.0 is its published default
    optimizer: str = "adadelta"
    seed: int = 0
    threads: int = 1
    embeddings: str | None = None
    hidden: list = field(default_factory=list)
    max_tokens: int | None = None  # truncate stored tokens further at train time
    workers: int = 0             # DataLoader processes building batches (region stores read features)
    answer_types: list = field(default_factory=list)  # VQA: train and evaluate on these answer types only
    device: str = "auto"         # cpu, cuda, or auto (cuda when available)
    fraction: float = 1.0        # train on this share of the training pair groups (learning curves)
    fraction_seed: int | None = None  # which groups: a seeded permutation's prefix (default: seed), so nested
    embed_init: str = "normal"   # learned word embeddings: normal (torch's N(0, 1)) or uniform (Keras')
    embed_scale: float | None = None  # std (normal) or half-width (uniform); default 1.0 / 0.05
    rho: float = 0.9             # AdaDelta's decay (torch's default; Keras uses 0.95)
    eps: float = 1e-6            # AdaDelta's epsilon (torch's default; Keras uses 1e-7)
    gs_detach_target: bool = False  # GS: t = x_j - x_i as a constant (no gradient through the inputs' encoder)
    random_sign: str = "partner"  # gs-random: class and sign from the random partner, or from the row's own pair

    def to_dict(self) -> dict:
        return asdict(self)


NOT_IDENTITY = ("device", "threads", "workers")  # where and how fast a run goes, not what it computes


def identity(config: dict) -> dict:
    """The options of a run's config.json that change its results, and the store's content digest."""
    keys = [f.name for f in fields(RunConfig) if f.name not in NOT_IDENTITY] + ["store_digest"]
    return {k: config.get(k) for k in keys}


# The paper's values where it gives them (README: Presets); epochs/patience chosen on val.
PRESETS = {
    # IMDb: AdaDelta's steps made larger (lr 6.5, eps 1e-4, rho 0.95) and Keras' uniform embeddings,
    # chosen on val by cftrain sweep (README: Reproduction); batch, GS weight and ensemble the paper's
    "imdb": dict(model="bow", batch_size=32, gs_weight=20.0, ensemble=6, epochs=100, patience=20, lr=6.5,
                 eps=1e-4, rho=0.95, embed_init="uniform"),
    "snli": dict(model="nli-bow", batch_size=512, gs_weight=0.01, ensemble=6, epochs=200, patience=30),
    "coco": dict(model="mlp", hidden=[64, 64, 64], batch_size=512, gs_weight=1.0, ensemble=1),
    # BUTD's usual recipe (Adamax 2e-3, width 1024); the paper gives no GS weight for VQA: choose it on val
    "vqa": dict(model="butd", hidden=[1024], batch_size=512, optimizer="adamax", lr=2e-3, gs_weight=1.0,
                ensemble=1, epochs=20, patience=5),
    "toy-vqa": dict(model="butd", hidden=[32], batch_size=64, optimizer="adamax", lr=2e-3, gs_weight=1.0,
                    ensemble=1, epochs=80, patience=20),
    "toy": dict(model="mlp", hidden=[], batch_size=64, gs_weight=1.0, ensemble=1, epochs=30, patience=10),
}


DEFAULT_MODEL = {"text": "bow", "text_pair": "nli-bow", "vector": "mlp", "regions": "butd"}


def resolve(task: str, input_kind: str | None = None, **overrides) -> RunConfig:
    """The preset of `task` (or defaults for `input_kind`) with every non-None override applied."""
    values = dict(PRESETS.get(task, {"model": DEFAULT_MODEL.get(input_kind, "mlp")}))
    known = {f.name for f in fields(RunConfig)}
    for key, value in overrides.items():
        if key not in known:
            raise UserError(f"unknown option {key!r}")
        if value is not None:
            values[key] = value
    if values.get("optimizer", RunConfig.optimizer) != "adadelta":  # the preset's AdaDelta settings lapse
        for key in ADADELTA_ONLY:
            if overrides.get(key) is None:
                values.pop(key, None)
    config = RunConfig(**values)
    validate(config, input_kind)
    return config


OPTIMIZER_NAMES = ("adadelta", "adam", "adamax")  # cftrain.optim.OPTIMIZERS builds them
EMBED_INITS = ("normal", "uniform")
# option: (check, what it must be); checked before any work, for the CLI and the Python API alike
RULES = {
    "gs_weight": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "ensemble": (lambda v: v >= 1, "an integer >= 1"),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "patience": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 2, "an integer >= 2"),
    "threads": (lambda v: v >= 1, "an integer >= 1"),
    "workers": (lambda v: v >= 0, "an integer >= 0"),
    "max_tokens": (lambda v: v is None or v >= 1, "an integer >= 1"),
    "hidden": (lambda v: all(int(h) >= 1 for h in v), "layer widths >= 1"),
    "optimizer": (lambda v: v in OPTIMIZER_NAMES, f"one of {', '.join(OPTIMIZER_NAMES)}"),
    "device": (lambda v: v in ("auto", "cpu", "cuda"), "auto, cpu or cuda"),
    "fraction": (lambda v: math.isfinite(v) and 0 < v <= 1, "a number in (0, 1]"),
    "embed_init": (lambda v: v in EMBED_INITS, f"one of {', '.join(EMBED_INITS)}"),
    "embed_scale": (lambda v: v is None or (math.isfinite(v) and v > 0), "a finite number > 0"),
    "rho": (lambda v: math.isfinite(v) and 0 < v < 1, "a number in (0, 1)"),
    "eps": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "random_sign": (lambda v: v in RANDOM_SIGNS, f"one of {', '.join(RANDOM_SIGNS)}"),
}
ADADELTA_ONLY = ("rho", "eps")


def validate(config: RunConfig, input_kind: str | None = None) -> None:
    """A one-line error naming the first option out of range, an unknown mode, or a model that
    does not fit the store's input kind."""
    method(config.mode)
    for name, (ok, what) in RULES.items():
        value = getattr(config, name)
        try:
            good = ok(value)
        except (TypeError, ValueError):
            good = False
        if not good:
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            raise UserError(f"--{name.replace('_', '-')} {shown}: must be {what}")
    for name in ADADELTA_ONLY:
        if config.optimizer != "adadelta" and getattr(config, name) != RunConfig.__dataclass_fields__[name].default:
            raise UserError(f"--{name} {getattr(config, name)}: AdaDelta's option, but --optimizer is "
                            f"{config.optimizer}")
    check_model(config.model, input_kind)
    check_embeddings(config.embeddings)
