"""What the build benches share: time a build and a baseline, each in its own process."""

from __future__ import annotations

import resource
import subprocess
import sys
import time


def build_and_baseline(build_args: list, baseline_code: str, baseline_args: list) -> tuple[float, int, float]:
    """(build seconds, build peak RSS in MB, baseline seconds as the baseline script prints them).

    The build runs first, so the children's peak RSS is the build's alone."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli.cfbuild", *map(str, build_args)], check=True)
    build_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    baseline = subprocess.run([sys.executable, "-c", baseline_code, *map(str, baseline_args)], check=True,
                              capture_output=True, text=True)
    return build_s, peak_mb, float(baseline.stdout)
