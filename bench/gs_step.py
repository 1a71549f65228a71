"""Time of one GS training step over one plain (augmented) step on the same batch, per model:
`mlp` (COCO shape: batch 512, 2048 -> 64 -> 64 -> 64 -> 80, the batch as the data loader makes it), `bow` (IMDb: batch 32 of whole
reviews, 20,002 x 50 embeddings), `butd` (batch 128, 36 x 2048 regions, width 1024).

Usage: python bench/gs_step.py [--repeat R] [--smoke]   Prints key=value lines, ends with ratio=<max>.
--smoke: one repeat at tiny sizes (CI runs it: the script keeps working; its ratios mean nothing).
Plain and GS steps are timed alternately (best of R each), so both see the same machine.
Before/after: PYTHONPATH=OLD_CHECKOUT python bench/gs_step.py runs an older checkout's code.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from cftrain.data import PairBatches, SplitTensors
from cftrain.models import make_model
from cftrain.presets import resolve
from cftrain.train import make_optimizer, train_step


def pairs_batch(n: int, targets: torch.Tensor, **inputs) -> dict:
    edges = torch.stack([torch.arange(0, n, 2), torch.arange(1, n, 2)], 1)
    return {**inputs, "targets": targets, "edges": torch.cat([edges, edges.flip(1)])}


def loader_batch(targets: torch.Tensor, **inputs) -> dict:
    """All rows as one batch the way training makes it (the data loader's own extras included),
    rows 2k and 2k+1 a pair."""
    n = len(targets)
    split = SplitTensors("train", inputs, targets, targets[:, 0].long(), torch.arange(n) % 2 == 1,
                         np.arange(n).reshape(-1, 2), {})
    return PairBatches(split, n, seed=0).make_batch(list(range(n // 2)))


def cases(scale: int = 1) -> dict:
    """The three models' batches; `scale` > 1 divides every size (smoke runs)."""
    g = torch.Generator().manual_seed(0)
    n = 512 // scale
    multi = (torch.rand(n, 80, generator=g) < 0.05).float()
    multi[1::2, :] = multi[0::2, :]
    multi[1::2, 0] = 1 - multi[0::2, 0]  # each pair differs in one class
    coco = ("mlp", dict(input_dim=2048 // scale, n_outputs=80, hidden=[64, 64, 64]), "multilabel", "coco",
            loader_batch(multi, x=torch.randn(n, 2048 // scale, generator=g)))
    binary = torch.tensor([[1.0], [0.0]] * 16)
    imdb = ("bow", dict(vocab_size=20002, n_outputs=1), "binary", "imdb",
            pairs_batch(32, binary, tokens=torch.randint(2, 20002, (32, 700), generator=g),
                        length=torch.randint(100, 700, (32,), generator=g)))
    m, dim = 128 // scale, 2048 // scale
    soft = torch.zeros(m, 300)
    soft[0::2, 5] = 1.0  # counterfactuals (odd rows) have no answer
    mask = torch.ones(m, 36, dtype=torch.bool)
    mask[1::2, :4] = False
    feats = torch.randn(m, 36, dim, generator=g) * mask[..., None]
    vqa = ("butd", dict(vocab_size=3000, n_outputs=300, feature_dim=dim, hidden=[1024 // scale]), "soft", "vqa",
           pairs_batch(m, soft, features=feats, region_mask=mask, tokens=torch.randint(2, 3000, (m, 14), generator=g),
                       length=torch.full((m,), 14)))
    return {"mlp": coco, "bow": imdb, "butd": vqa}


def trainer(name, kwargs, task, mode):
    torch.manual_seed(0)
    model = make_model(name, **kwargs)
    config = resolve(task, mode=mode)
    return model, make_optimizer(config, model.parameters()), config


def step_times(name, kwargs, kind, task, batch, repeat) -> tuple:
    """Best plain and GS step times, their steps interleaved so that both see the same machine."""
    runs = {mode: trainer(name, kwargs, task, mode) for mode in ("augmented", "gs")}
    best = {mode: float("inf") for mode in runs}
    for model, optimizer, config in runs.values():
        train_step(model, optimizer, batch, config, kind)  # warm-up
    for _ in range(repeat):
        for mode, (model, optimizer, config) in runs.items():
            start = time.perf_counter()
            train_step(model, optimizer, batch, config, kind)
            best[mode] = min(best[mode], time.perf_counter() - start)
    return best["augmented"], best["gs"]


def main(repeat: int, scale: int = 1) -> None:
    torch.set_num_threads(1)
    ratios = []
    for label, (name, kwargs, kind, task, batch) in cases(scale).items():
        plain, gs = step_times(name, kwargs, kind, task, batch, repeat)
        ratios.append(gs / plain)
        print(f"model={label} plain_ms={1000 * plain:.1f} gs_ms={1000 * gs:.1f} ratio={gs / plain:.2f}")
    print(f"ratio={max(ratios):.2f}")


if __name__ == "__main__":
    if "--smoke" in sys.argv:
        main(1, scale=16)
    else:
        main(int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5)
