"""What opening a store costs before a byte of its data is used: the structure walk
(`cfpairs.structure.walk`), the content digest, `check_store` (walk, invariants and digest, as a
text or vector run does on loading) and a plain `Store` open, each beside reading every dataset
with h5py (the least any reader pays), on a toy store and a small text store like the tests'.

Usage: python bench/store_checks.py [--smoke]   Prints key=value lines (milliseconds, best of N),
ends with ratio=<check_store with digest / reading every dataset, on the toy store>.
--smoke: a few repeats (CI runs it: the script keeps working; its figures mean little).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import h5py

from cfbuild.builders.table import build_table
from cfbuild.builders.toy import build_toy
from cfpairs import memo
from cfpairs.check import check_store
from cfpairs.digest import content_digest
from cfpairs.store import Store
from cfpairs.structure import walk


def best_ms(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def read_everything(path: Path) -> None:
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)


def measure(name: str, path: Path, repeat: int) -> float:
    with h5py.File(path, "r") as h5:
        layout = walk(h5, path)
        walk_ms = best_ms(lambda: walk(h5, path), repeat)
        digest_ms = best_ms(lambda: content_digest(h5, layout), repeat)
    check_ms = best_ms(lambda: memo.forget() or check_store(path, digest=True), repeat)  # the checks, not the memo
    memo.forget()
    with Store(path):
        pass  # the walk remembered: what each later open of an unchanged store costs
    open_ms = best_ms(lambda: Store(path).close(), repeat)
    read_ms = best_ms(lambda: read_everything(path), repeat)
    print(f"store={name} datasets={len(layout.datasets)} read_all_ms={read_ms:.2f} walk_ms={walk_ms:.2f} "
          f"digest_ms={digest_ms:.2f} check_ms={check_ms:.2f} open_ms={open_ms:.2f}", flush=True)
    return check_ms / read_ms


def text_rows(path: Path, n: int) -> Path:
    rows = [{"g": i, "a": f"good film {i}", "y": "1"} for i in range(n)] + \
           [{"g": i, "a": f"bad film {i}", "y": "0"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def main(argv: list) -> None:
    repeat = 3 if "--smoke" in argv else 50
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_toy(tmp / "toy.h5", n=200, seed=0)
        rows = text_rows(tmp / "rows.jsonl", 8)
        build_table({"train": rows, "val": rows, "test": rows}, tmp / "text.h5", text_cols=["a"], label_col="y",
                    pair_col="g")
        ratio = measure("toy", tmp / "toy.h5", repeat)
        measure("text", tmp / "text.h5", repeat)
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
