"""Size, build time and peak RSS of `cfbuild toy --n N` (default 1,000,000), and verify time.

Usage: python bench/toy_build.py [N | --smoke]     (CI runs --smoke: N = 2000)
"""

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "toy.h5"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli.cfbuild", "toy", "--n", str(n), "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        build = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
        start = time.perf_counter()
        verify = subprocess.run([sys.executable, "-m", "cli.cfbuild", "verify", str(out)], capture_output=True, text=True)
        print(f"n={n} size_mb={out.stat().st_size / 1e6:.1f} build_s={build:.2f} verify_s={time.perf_counter() - start:.2f} "
              f"verify={verify.stdout.strip()} peak_rss_mb={peak_mb}")


if __name__ == "__main__":
    main(2000 if "--smoke" in sys.argv else int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
