"""Task losses, one class each, behind one registry: every module of this package is imported with
it, so a new loss is one new file (`docs/EXTENDING.md`). A loss says which store label kinds it
serves and declares the options only it reads (`options`, `cftrain.options.Option`s); the run
builds it with those options' values as keyword arguments. Called on logits (B, N, C) for N
ensemble members and dense targets (B, C), it gives each row's loss for each member, (B, N): the
run sums them over its rows (`cftrain.methods.task_term`). A store's label kind trains with `bce`
unless `--loss` names another that serves it.
"""

from __future__ import annotations

import importlib
import pkgutil

import torch

from cfpairs.errors import UserError

LOSSES: dict[str, type] = {}
DEFAULT = "bce"


def register(cls):
    LOSSES[cls.name] = cls
    return cls


class Loss:
    name = ""
    serves: tuple = ()   # the store label kinds it can train
    options: tuple = ()  # the run options only this loss reads: its constructor's keyword arguments

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def loss_class(name: str | None, label_kind: str | None = None) -> type:
    """The loss registered as `name` (None: the default), refused when it does not serve `label_kind`."""
    name = name or DEFAULT
    if name not in LOSSES:
        raise UserError(f"--loss {name}: unknown loss (choose from {', '.join(sorted(LOSSES))})")
    return check_serves(LOSSES[name], label_kind)


def check_serves(cls: type, label_kind: str | None) -> type:
    """`cls`, refused when it does not serve `label_kind`."""
    name = cls.name
    if label_kind is not None and label_kind not in cls.serves:
        fitting = sorted(n for n, c in LOSSES.items() if label_kind in c.serves)
        raise UserError(f"--loss {name}: does not fit the store's label kind {label_kind!r} (losses for it: "
                        f"{', '.join(fitting)})")
    return cls


def make_loss(name: str | None, label_kind: str, config=None) -> Loss:
    """The loss, built with its declared options' values from `config` (their defaults without one)."""
    return build_loss(loss_class(name, label_kind), config)


def build_loss(cls: type, config=None) -> Loss:
    """A loss of class `cls` (a run's resolved loss) with its options' values from `config`."""
    values = {o.name: (config.get(o.name, o.default) if config is not None else o.default) for o in cls.options}
    return cls(**values)


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")


_discover()

__all__ = ["DEFAULT", "LOSSES", "Loss", "loss_class", "make_loss", "register"]
