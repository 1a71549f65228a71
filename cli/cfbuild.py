"""`cfbuild`: build, inspect and verify pair stores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from cli.common import Group, debug_option

OUT = click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                   help="The store to write (.h5). Written to a temporary file, renamed when complete.")
FORCE = click.option("--force", is_flag=True, help="Replace an existing store at --out.")
STORE = click.argument("store", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@click.group(name="cfbuild", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@debug_option
def main(debug):
    """Build counterfactual pair stores (HDF5, cfpairs format v1).

    \b
    Example:
      cfbuild toy --out toy.h5
      cfbuild inspect toy.h5
      cfbuild verify toy.h5
    """


@main.command()
@STORE
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect(store, as_json):
    """Summarise STORE: kinds, classes, splits, pairs, labels, sources, digest.

    Example: cfbuild inspect toy.h5 --json
    """
    from cfbuild.check import format_summary, summarize
    from cfbuild.store import Store

    with Store(store) as opened:
        summary = summarize(opened)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@main.command()
@STORE
def verify(store):
    """Recompute the digest and check every invariant of the format.

    Prints "ok" and exits 0 when the store is whole; exits 1 naming the first
    failing dataset or invariant otherwise.

    Example: cfbuild verify toy.h5
    """
    from cfbuild.check import verify_store

    problem = verify_store(store)
    if problem:
        click.echo(f"FAILED: {problem}")
        raise SystemExit(1)
    click.echo("ok")


@main.command()
@OUT
@click.option("--n", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Training originals (val gets n/4, test and test_shifted n/2 each).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--spurious", default=0.95, show_default=True, type=click.FloatRange(0, 1),
              help="P(spurious coordinate agrees with the label) in train and val.")
@click.option("--dim", default=10, show_default=True, type=click.IntRange(min=2),
              help="Vector width: causal, spurious and dim-2 noise coordinates.")
@FORCE
def toy(out, n, seed, spurious, dim, force):
    """The built-in toy store (an analogue of the paper's Fig. 3).

    Example: cfbuild toy --out toy.h5 --n 2000 --seed 0 --spurious 0.95
    """
    from cfbuild.builders.toy import build_toy

    start = time.perf_counter()
    build_toy(out, n=n, seed=seed, spurious=spurious, dim=dim, force=force,
              progress=lambda name: click.echo(f"  wrote split {name}", err=True))
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
