"""What verifying a text or vector store as a run loads it costs: the seconds of `check_store` with
the digest (every run of such a store now does it, a campaign's workers included) over the seconds
of one whole run with the task's preset (mode augmented: the cheapest trained row, so the ratio is
the largest a table sees).

Usage: python bench/verify_cost.py [CAD_DIR] [--smoke]   Prints key=value lines, ends with ratio=<max>.
Without CAD_DIR (or without the release there): the toy store only. --smoke: a tiny toy store, one
epoch (CI runs it: the script keeps working; its ratio means nothing).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cfbuild.builders.cad import build_imdb, build_snli
from cfbuild.builders.toy import build_toy
from cfpairs import memo
from cfpairs.check import check_store
from cfpairs.store import Store
from cftrain.presets import resolve
from cftrain.train import run


def best_of(function, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, store: Path, out: Path, **overrides) -> float:
    verify_s = best_of(lambda: memo.forget() or check_store(store, digest=True))  # the checks, not their memo
    with Store(store) as opened:
        config = resolve(opened.task, opened.input_kind, mode="augmented", **overrides)
    memo.forget()  # the run verifies the store as a first run of this process would
    start = time.perf_counter()
    run(store, out / name, config)
    run_s = time.perf_counter() - start
    ratio = verify_s / run_s
    print(f"store={name} verify_s={verify_s:.3f} run_s={run_s:.1f} share={100 * ratio:.2f}%", flush=True)
    return ratio


def main(argv: list) -> None:
    smoke = "--smoke" in argv
    args = [a for a in argv if a != "--smoke"]
    cad = Path(args[0]) if args else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_toy(tmp / "toy.h5", n=200 if smoke else 2000, seed=0)
        ratios = [measure("toy", tmp / "toy.h5", tmp, **({"epochs": 1} if smoke else {}))]
        if cad is not None and (cad / "sentiment").is_dir() and not smoke:
            build_imdb(cad, tmp / "imdb.h5")
            build_snli(cad, tmp / "snli.h5")
            ratios.append(measure("imdb", tmp / "imdb.h5", tmp))
            ratios.append(measure("snli", tmp / "snli.h5", tmp))
    print(f"ratio={max(ratios):.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
