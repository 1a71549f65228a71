"""A run looks each of its names up once (`cftrain.parts.RunParts`): its mode, model, optimizer and
loss are resolved before any work, and every stage after takes the objects."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

import cftrain.losses
import cftrain.methods
import cftrain.models
import cftrain.optim
from cftrain.presets import resolve
from cftrain.train import run

LOOKUPS = {"mode": (cftrain.methods, "method"), "model": (cftrain.models, "model_class"),
           "optimizer": (cftrain.optim, "optimizer_spec"), "loss": (cftrain.losses, "loss_class")}


def count_lookups(monkeypatch) -> Counter:
    """Every binding of the four lookup functions in a loaded cftrain module, counting its calls."""
    calls = Counter()
    for kind, (home, name) in LOOKUPS.items():
        real = getattr(home, name)

        def counted(*args, _kind=kind, _real=real, **kwargs):
            calls[(_kind, args[0] if args else None)] += 1
            return _real(*args, **kwargs)
        for module in [m for key, m in sys.modules.items() if key.startswith("cftrain") and m is not None]:
            if getattr(module, name, None) is real:
                monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("mode, kind", [("gs", "text"), ("logit-pairing", "vector")])
def test_a_run_looks_each_name_up_once(stores, tmp_path, monkeypatch, mode, kind):
    config = resolve("table" if kind == "text" else "toy", kind, mode=mode, epochs=2, loss="bce")
    calls = count_lookups(monkeypatch)
    run(stores[kind], tmp_path / "r", config)
    assert calls == Counter({("mode", mode): 1, ("model", config.model): 1, ("optimizer", config.optimizer): 1,
                             ("loss", "bce"): 1})
