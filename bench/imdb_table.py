"""Wall time of the whole IMDb reproduction: `cfbuild imdb` plus `cftrain table` with the IMDb
preset (every row, ensembles of 6, and the reference block), as a user runs them on this machine;
`reference_s` is the part the reference rows take (their fits and scores, from their records).

Usage: python bench/imdb_table.py CAD_DIR [--code DIR] [--smoke] [-- extra cftrain table options]
  --smoke: one epoch, single models, three rows (CI runs it; CAD_DIR may be $CFPAIRS_CAD_DIR)
  --code DIR: run another checkout's code (e.g. a worktree of an older commit) for a before/after
Prints key=value lines and ends with `seconds=<float>` (not part of CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list) -> None:
    smoke = "--smoke" in argv
    argv = [a for a in argv if a != "--smoke"]
    if not argv or argv[0].startswith("-"):
        argv = [os.environ.get("CFPAIRS_CAD_DIR", "../shared/data/cad"), *argv]
    cad, rest = Path(argv[0]).resolve(), argv[1:]  # the commands run in a temporary folder
    if smoke and not (cad / "sentiment").is_dir():
        print(f"skipped={cad} has no CAD release")
        print("seconds=0")
        return
    code = Path(__file__).resolve().parents[1]
    if rest[:1] == ["--code"]:
        code, rest = Path(rest[1]).resolve(), rest[2:]
    extra = rest[1:] if rest[:1] == ["--"] else rest
    if smoke:
        extra += ["--epochs", "1", "--ensemble", "1", "--modes", "chance,augmented,gs"]
    env = dict(os.environ, PYTHONPATH=str(code))
    with tempfile.TemporaryDirectory() as tmp:
        store, runs = Path(tmp) / "imdb.h5", Path(tmp) / "runs"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli.cfbuild", "imdb", "--cad-dir", str(cad), "--out", str(store)],
                       check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        build = time.perf_counter() - start
        table = subprocess.run([sys.executable, "-m", "cli.cftrain", "table", str(store), "--out", str(runs), *extra],
                               check=True, env=env, cwd=tmp, capture_output=True, text=True)
        total = time.perf_counter() - start
        references = _reference_seconds(store, Path(tmp) / "alone", env, tmp) if "--no-reference" not in extra \
            and "reference" in table.stdout else 0.0
    rows = [line for line in table.stdout.splitlines() if line.startswith("| ") and "method" not in line]
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        print(f"row={cells[0]!r} val_all={cells[1]}")
    print(f"code={code} build_s={build:.1f} table_s={total - build:.1f} reference_s={references:.1f}")
    print(f"seconds={total:.1f}")


def _reference_seconds(store: Path, folder: Path, env: dict, cwd: str) -> float:
    """What the table's reference block costs: the same fits (every reference, trained like
    augmentation and on the originals) and scores, timed alone in a fresh process."""
    code = ("import sys, time; from pathlib import Path; from cftrain.reference_rows import keep_references, planned; "
            "start = time.perf_counter(); "
            "keep_references(Path(sys.argv[2]), sys.argv[1], planned('text', 'binary', ['original'], True), {}, {}); "
            "print(time.perf_counter() - start)")
    folder.mkdir()
    done = subprocess.run([sys.executable, "-c", code, str(store), str(folder)], check=True, env=env, cwd=cwd,
                          capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main(sys.argv[1:])
