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

import numpy as np

from cfbuild import __version__
from cfpairs.store import StoreWriter
from cfpairs.progress import Progress
from cfpairs.errors import UserError
from cfpairs.outputs import check_output

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


def build_toy(out, *, n: int = 2000, seed: int = 0, spurious: float = 0.95, dim: int = 10,
              force: bool = False) -> None:
    """Write the toy store: `n` training originals, n/4 val, n/2 in each test split."""
    check_output(out, "store", force)  # before any work
    check_toy_memory(n, dim)
    params = {"n": n, "seed": seed, "spurious": spurious, "dim": dim}
    plan = [("train", n, spurious), ("val", max(1, n // 4), spurious),
            ("test", max(1, n // 2), 0.5), ("test_shifted", max(1, n // 2), 1.0 - spurious)]
    build = {"command": "cfbuild toy", "parameters": params, "version": __version__}
    with StoreWriter(out, task="toy", input_kind="vector", label_kind="binary",
                     class_names=["negative", "positive"], build=build, sources=[], force=force) as writer, \
            Progress(sum(size for _, size, _ in plan), "toy rows", unit="originals") as bar:
        for stream, (name, size, agree) in enumerate(plan):
            rng = np.random.default_rng([seed, stream])
            writer.write_split(name, **toy_split(rng, size, agree, dim, name))
            bar.update(size)
