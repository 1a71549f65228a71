"""How long `cfbuild verify` takes on a large store of any shape: bounded by the file's size.

Builds, in a temporary folder, (a) a vector store of about SIZE_MB of incompressible float32
(verified: the digest reads every byte) and (b) a file of the same size whose datasets declare
1,000 times more than it holds (refused from the sizes alone), and times `cfbuild verify` on each.
Prints key=value lines: seconds, MB per second of the file, and the outcome; ends with `seconds=`. Then what checking a
linked feature file against the store's sources costs (a run with --allow-external does it): a
1 GB file hashed the first time, and the same check again (remembered by path, size and mtime).

Usage: python bench/verify_bounded.py [--size-mb 200] [--smoke]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import h5py
import numpy as np

from cfpairs.store import StoreWriter


def vector_store(path: Path, size_mb: int) -> None:
    rows = max(64, size_mb * (1 << 20) // (4 * 512) // 2)
    rng = np.random.default_rng(0)
    with StoreWriter(path, task="bench", input_kind="vector", label_kind="binary", class_names=["a", "b"],
                     build={}, sources=[]) as writer:
        for split in ("train", "val"):
            x = rng.standard_normal((rows, 512), dtype=np.float32)
            labels = np.arange(rows) % 2
            pairs = np.stack([np.arange(0, rows - 1, 2), np.arange(1, rows, 2)], 1)
            writer.write_split(split, {"id": [f"{split}{i}" for i in range(rows)],
                                       "is_counterfactual": labels == 1, "label": labels, "x": x},
                               pairs, ["edited"] * len(pairs))


def declaring_store(path: Path, base: Path, size_mb: int) -> None:
    """The small store plus filler (incompressible, so the file is SIZE_MB) and zeros declared
    at 1,000 times the file's size, each chunk written compressed as is."""
    path.write_bytes(base.read_bytes())
    chunk = 1 << 20
    packed = zlib.compress(bytes(chunk), 9)
    with h5py.File(path, "r+") as h5:
        filler = np.frombuffer(np.random.default_rng(1).bytes(size_mb << 20), np.uint8)
        h5["train"].create_dataset("filler", data=filler)
        zeros = h5["train"].create_dataset("zeros", shape=(1000 * size_mb * chunk,), dtype="u1", chunks=(chunk,),
                                           compression="gzip")
        for k in range(1000 * size_mb):
            zeros.id.write_direct_chunk((k * chunk,), packed)


def timed_verify(path: Path) -> tuple:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli.cfbuild", "verify", str(path)], capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, (done.stdout + done.stderr).strip().splitlines()[-1][:120]


def main(argv: list) -> None:
    start = time.perf_counter()
    size = 4 if "--smoke" in argv else int(argv[argv.index("--size-mb") + 1]) if "--size-mb" in argv else 200
    with tempfile.TemporaryDirectory() as tmp:
        store, other = Path(tmp) / "vectors.h5", Path(tmp) / "declaring.h5"
        vector_store(store, size)
        small = Path(tmp) / "small.h5"
        vector_store(small, 1)
        declaring_store(other, small, size)
        for name, path in (("store", store), ("declaring", other)):
            seconds, code, last = timed_verify(path)
            mb = path.stat().st_size / (1 << 20)
            print(f"case={name} file_mb={mb:.0f} seconds={seconds:.2f} mb_per_s={mb / seconds:.0f} rc={code} "
                  f"said={last!r}")
        linked_check(Path(tmp), 16 if "--smoke" in argv else 1024)
    print(f"seconds={time.perf_counter() - start:.1f}")


def linked_check(folder: Path, size_mb: int) -> None:
    import os  # noqa: PLC0415
    from cfpairs.hashcache import cached_sha256  # noqa: PLC0415

    os.environ["CFPAIRS_CACHE_DIR"] = str(folder / "cache")
    path = folder / "features.bin"
    with open(path, "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(1 << 20))
    times = []
    for _ in range(2):
        start = time.perf_counter()
        cached_sha256(path)
        times.append(time.perf_counter() - start)
    print(f"case=linked file_mb={size_mb} first_s={times[0]:.2f} again_s={times[1]:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
