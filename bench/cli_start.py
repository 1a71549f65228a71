"""How fast `cftrain --help` starts: the best of a few starts of each help page in a fresh
interpreter, beside a bare `import torch` (what the help no longer loads), and which heavy modules
each start loaded.

Usage: python bench/cli_start.py [--smoke]   Prints key=value lines, ends with ratio=<help / import torch>.
--smoke: one start each (CI runs it: the script keeps working).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "matplotlib", "h5py", "numpy", "sklearn")
PAGES = {"cftrain_help": ["--help"], "cftrain_run_help": ["run", "--help"], "cftrain_table_help": ["table", "--help"]}


def started(code: str, repeat: int) -> tuple[float, str]:
    """(best seconds of `python -c code`, its last line of output)."""
    best, last = float("inf"), ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - start)
        last = out.stdout.strip().splitlines()[-1]
    return best, last


def main(argv: list) -> None:
    repeat = 1 if "--smoke" in argv else 5
    torch_s, _ = started("import torch; print('ok')", repeat)
    print(f"import_torch_s={torch_s:.3f}", flush=True)
    worst = 0.0
    for name, args in PAGES.items():
        code = ("import sys\nfrom cli.cftrain import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
                "print('loaded=' + (','.join(m for m in %r if m in sys.modules) or 'none'))") % (args, HEAVY)
        seconds, loaded = started(code, repeat)
        worst = max(worst, seconds)
        print(f"page={name} seconds={seconds:.3f} {loaded}", flush=True)
    print(f"ratio={worst / torch_s:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
