"""The embedded toy store: an analogue of the paper's Fig. 3.

x = (causal, spurious, noise...). The label is [causal > 0]. In `train` and
`val` the spurious coordinate agrees with the label with probability
`spurious`; in `test` with probability 0.5 and in `test_shifted` with
probability 1 - `spurious`. Each original has one counterfactual: a minimal
edit of the causal coordinate that just crosses the boundary (so the label
flips), everything else unchanged. Plain augmentation sees the edits as
near-boundary points; GS also sees their direction, which is the causal axis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from cfbuild.protocol import SEED_MAX, Builder, option, register, run_builder
from cfpairs.errors import UserError
from cfpairs.progress import Progress

CAUSAL_RANGE = (0.0, 1.0)      # |causal| of originals
EDIT_RANGE = (0.02, 0.1)       # |causal| after the minimal edit
SPURIOUS_MEAN, SPURIOUS_SD = 1.0, 0.3


def toy_split(rng: np.random.Generator, n: int, agree: float, dim: int, prefix: str) -> dict:
    """Examples and pairs of one split: originals at even rows, their edits at odd rows."""
    y = rng.integers(0, 2, n)
    sign = 2.0 * y - 1.0
    causal = sign * rng.uniform(*CAUSAL_RANGE, n)
    agrees = rng.random(n) < agree
    spurious = np.where(agrees, sign, -sign) * rng.normal(SPURIOUS_MEAN, SPURIOUS_SD, n)
    noise = rng.normal(0.0, 1.0, (n, dim - 2))
    x = np.column_stack([causal, spurious, noise]).astype(np.float32)
    x_cf = x.copy()
    x_cf[:, 0] = -sign * rng.uniform(*EDIT_RANGE, n)
    rows = np.empty((2 * n, dim), np.float32)
    rows[0::2], rows[1::2] = x, x_cf
    label = np.empty(2 * n, np.int64)
    label[0::2], label[1::2] = y, 1 - y
    ids = np.array([f"{prefix}-{i:07d}" for i in range(n)], dtype=object)
    examples = {
        "id": np.column_stack([ids, ids + "-cf"]).ravel(),
        "is_counterfactual": np.tile([False, True], n),
        "label": label,
        "x": rows,
    }
    pairs = np.column_stack([np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)])
    return {"examples": examples, "pairs_index": pairs, "pairs_kind": np.full(n, "edited", dtype=object)}


def check_toy_memory(n: int, dim: int) -> None:
    """The largest split's arrays (originals, edits and both interleaved, float32) must fit in memory."""
    need = 3 * 2 * max(1, n) * dim * 4
    have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > have:
        raise UserError(f"--n {n} --dim {dim}: the training split alone would need about {need / 1e9:,.1f} GB of "
                        f"memory to build; this machine has {have / 1e9:,.1f} GB")


@dataclass
class ToyOptions:
    n: int = option(2000, help="Training originals (val gets n/4, test and test_shifted n/2 each).", low=1)
    seed: int = option(0, help="Seed of every draw.", low=0, high=SEED_MAX)
    spurious: float = option(0.95, help="P(spurious coordinate agrees with the label) in train and val.", low=0, high=1)
    dim: int = option(10, help="Vector width: causal, spurious and dim-2 noise coordinates.", low=2)


@register
class Toy(Builder):
    name, Options = "toy", ToyOptions
    summary = "The built-in toy store (an analogue of the paper's Fig. 3)."
    example = "cfbuild toy --out toy.h5 --n 2000 --seed 0 --spurious 0.95"
    splits = ("train", "val", "test", "test_shifted")

    def check(self, options):
        super().check(options)
        check_toy_memory(options.n, options.dim)

    def build(self, o, driver):
        plan = [("train", o.n, o.spurious), ("val", max(1, o.n // 4), o.spurious),
                ("test", max(1, o.n // 2), 0.5), ("test_shifted", max(1, o.n // 2), 1.0 - o.spurious)]
        with driver.writer(task="toy", input_kind="vector", label_kind="binary",
                           class_names=["negative", "positive"]) as writer, \
                Progress(sum(size for _, size, _ in plan), "toy rows", unit="originals") as bar:
            for stream, (name, size, agree) in enumerate(plan):
                rng = np.random.default_rng([o.seed, stream])
                writer.write_split(name, **toy_split(rng, size, agree, o.dim, name))
                bar.update(size)


def build_toy(out, force: bool = False, **options) -> dict:
    """Write the toy store (`ToyOptions`): `n` training originals, n/4 val, n/2 in each test split."""
    return run_builder("toy", out, force, **options)
