"""Epoch time of a 6-member ensemble over that of 1 member (the fused ensemble at work), for
`bow` on the IMDb store and `mlp` on a COCO-shaped synthetic store (batch 512,
2048 -> 64 -> 64 -> 64 -> 80, 80 classes); and the same 6 members in the generic form a new model
gets (`cftrain.ensemble.checked_on`: the fastest, on the first batch, of the vmapped members, the
members in turn and the members in turn over one shared embedding table; `generic_form` says which), against the hand-fused form (`generic_over_hand`) and
one member (`generic_ratio`: never above 6, the members in turn).

Usage: python bench/ensemble.py IMDB_STORE [--epochs E] [--rounds R] | --smoke   Prints key=value lines;
ends with ratio=<the larger of the two hand-fused ratios> (not part of CI). The trainings alternate R
times (default 2) and each keeps its best epoch, so a slow phase of the machine does not land on one
side only. `mlp_floor_ratio` is the least the mlp ratio could be here if only its first layers'
arithmetic grew with the members. Before/after: PYTHONPATH=OLD_CHECKOUT runs an older checkout's code.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cfpairs import open_store
from cfpairs.store import StoreWriter
from cftrain.presets import RunConfig, resolve
from cftrain.parts import RunParts
from cftrain.train import fit, load_splits


def coco_shaped(path: Path, n: int = 4096, dim: int = 2048, classes: int = 80) -> Path:
    rng = np.random.default_rng(0)
    with StoreWriter(path, task="coco", input_kind="vector", label_kind="multilabel",
                     class_names=[f"c{i}" for i in range(classes)], build={}, sources=[]) as writer:
        for name, rows in (("train", n), ("val", 512)):
            labels = (rng.random((rows, classes)) < 0.05).astype(np.float32)
            edited = labels.copy()
            edited[:, 0] = 1 - labels[:, 0]
            x = rng.normal(size=(2 * rows, dim)).astype(np.float32)
            writer.write_split(name, {"id": [str(i) for i in range(2 * rows)], "is_counterfactual":
                                      np.arange(2 * rows) >= rows, "label": np.concatenate([labels, edited]), "x": x},
                               np.stack([np.arange(rows), rows + np.arange(rows)], 1), ["inpainted"] * rows)
    return path


CHOSEN = []  # the generic form each generic training chose (vmapped, sequential or sharedtables)


def epoch_seconds(store_path, ensemble: int, epochs: int, generic: bool = False) -> float:
    """Best epoch time; `generic`: the model's hand-fused form set aside (the generic form, the fastest
    of its generic forms, as a new model without a fused form gets)."""
    if generic:
        import cftrain.train as train  # noqa: PLC0415  (a checkout without it never asks)
        from cftrain.models import MODELS  # noqa: PLC0415
        saved, checked = {name: cls.fused for name, cls in MODELS.items()}, train.checked_on
        for cls in MODELS.values():
            cls.fused = None
        train.checked_on = lambda *a, **k: CHOSEN.append(checked(*a, **k)) or CHOSEN[-1]
        try:
            return epoch_seconds(store_path, ensemble, epochs)
        finally:
            train.checked_on = checked
            for name, cls in MODELS.items():
                cls.fused = saved[name]
    with open_store(store_path) as store:
        cpu = {"device": "cpu"} if "device" in RunConfig.__dataclass_fields__ else {}  # older checkouts: none
        config = resolve(store.task, store.input_kind, mode="gs", ensemble=ensemble, epochs=epochs,
                         patience=epochs, **cpu)
        splits = load_splits(store, config)
        _, _, history = fit(RunParts.of(config, store), store, splits)
    return min(h["seconds"] for h in history)


def first_layers_seconds(members: int, batch: int = 512, dim: int = 2048, width: int = 64, repeat: int = 30) -> float:
    """Best time of the mlp's first layers alone, forward and weight gradient, for `members` side by side."""
    x, weight = torch.randn(batch, dim), torch.randn(members * width, dim)
    bias, upstream = torch.zeros(members * width), torch.randn(batch, members * width)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        torch.addmm(bias, x, weight.t()), upstream.t() @ x
        best = min(best, time.perf_counter() - start)
    return best


def tiny_imdb(path: Path) -> Path:
    """A small text store with the IMDb task's preset (smoke runs: no CAD release needed)."""
    from cfbuild.builders.table import build_table  # noqa: PLC0415

    rows = path.with_suffix(".jsonl")
    rows.write_text("".join(f'{{"g": {i}, "t": "{w} film {i} with words {i % 7}", "y": {y}}}\n'
                            for i in range(40) for w, y in (("good", 1), ("bad", 0))))
    build_table({"train": rows, "val": rows}, path, text_cols=["t"], label_col="y", pair_col="g", task="imdb")
    return path


def main(imdb: str | None, epochs: int, rounds: int, generic: bool) -> None:
    torch.set_num_threads(1)
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        imdb = Path(imdb) if imdb else tiny_imdb(Path(tmp) / "imdb.h5")
        coco = coco_shaped(Path(tmp) / "coco.h5", *((64, 32) if imdb.parent == Path(tmp) else ()))
        for label, path in (("bow_imdb", imdb), ("mlp_coco", coco)):
            one = six = vmapped = float("inf")
            for _ in range(rounds):
                one, six = min(one, epoch_seconds(path, 1, epochs)), min(six, epoch_seconds(path, 6, epochs))
                if generic:
                    vmapped = min(vmapped, epoch_seconds(path, 6, epochs, generic=True))
            ratios.append(six / one)
            print(f"model={label} epoch_s_1={one:.2f} epoch_s_6={six:.2f} ratio={six / one:.2f}")
            if generic:
                form = type(CHOSEN[-1]).__name__.lower() if CHOSEN else "?"
                print(f"model={label} epoch_s_6_generic={vmapped:.2f} generic_form={form} "
                      f"generic_ratio={vmapped / one:.2f} generic_over_hand={vmapped / six:.2f}")
    # The floor of the mlp ratio on this machine: one member's epoch plus only the extra arithmetic
    # of five more first layers (16 batches of 512), as if everything else were shared for free.
    extra = 16 * (first_layers_seconds(6) - first_layers_seconds(1))
    print(f"mlp_first_layers_extra_s={extra:.2f} mlp_floor_ratio={(one + extra) / one:.2f}")
    print(f"ratio={max(ratios):.2f}")


if __name__ == "__main__":
    def option(name: str, default: int) -> int:
        return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default
    try:
        import cftrain.ensemble  # noqa: F401  (older checkouts have no generic form to compare)
        has_generic = "--no-generic" not in sys.argv
    except ImportError:
        has_generic = False
    if "--smoke" in sys.argv:
        main(None, 1, 1, has_generic)
    else:
        main(sys.argv[1], option("--epochs", 2), option("--rounds", 2), has_generic)
