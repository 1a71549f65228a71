"""`cftrain table` end to end on the two synthetic image stores the tests use (not part of CI).

- COCO-like: classes in pairs that co-occur 99% of the time in train2014 and independently in
  val2014; 10% of images have an inpainted edit (one class removed). Built with `cfbuild coco`.
- VQA-like (`cfbuild toy-vqa`): the answer is the colour of the region the question names; a
  question word names the answer 90% of the time in train/val, never reliably in test.

Usage: python bench/synthetic_tables.py [--seed 0] [--out runs/synthetic] [--smoke]   (CI: --smoke, 1 epoch)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.coco_fixtures import write_spurious_coco  # noqa: E402


def cli(program: str, *args) -> None:
    subprocess.run([sys.executable, "-m", f"cli.{program}", *map(str, args)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic"))
    parser.add_argument("--smoke", action="store_true", help="one epoch, toy-vqa of 40 questions (CI runs it)")
    args = parser.parse_args()
    quick = ["--epochs", 1] if args.smoke else []
    coco = args.out / "coco-sources"
    coco.mkdir(parents=True, exist_ok=True)
    write_spurious_coco(coco, seed=args.seed)
    cli("cfbuild", "coco", "--instances-dir", coco / "instances", "--edited-dir", coco / "edited",
        "--features", coco / "features.npz", "--val-size", 100, "--seed", args.seed, "--out", args.out / "coco.h5",
        "--force")
    cli("cftrain", "table", args.out / "coco.h5", "--out", args.out / "coco-table", "--seed", args.seed,
        "--modes", "chance,original,augmented,gs,gs-random", *quick)
    cli("cfbuild", "toy-vqa", "--out", args.out / "toy-vqa.h5", "--seed", args.seed, "--force",
        *(["--n", 40] if args.smoke else []))
    cli("cftrain", "table", args.out / "toy-vqa.h5", "--out", args.out / "toy-vqa-table", "--seed", args.seed,
        "--modes", "chance,original,augmented,gs,gs-random", *quick)


if __name__ == "__main__":
    main()
