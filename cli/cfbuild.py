"""`cfbuild`: build, inspect and verify pair stores."""

from __future__ import annotations

import dataclasses
import inspect as pyinspect
import json
import time
from pathlib import Path

import click

from cfbuild.builders.cad import build_imdb, build_snli
from cfbuild.builders.coco import build_coco
from cfbuild.builders.table import build_import, build_table
from cfbuild.builders.toy import build_toy
from cfbuild.builders.toy_regions import build_toy_regions
from cfbuild.builders.transfer import build_transfer
from cfbuild.builders.vqa import VqaOptions, build_vqa
from cli.common import FiniteFloat, Group, InputPath, group_options

SEED = click.IntRange(0, 2 ** 32 - 1)
INPUT_DIR = InputPath(file_okay=False, dir_okay=True)


def default_of(builder, name: str):
    """The builder's own default for `name` (its options dataclass or keyword argument):
    the one source of defaults, which --help shows."""
    if dataclasses.is_dataclass(builder):
        return {f.name: f.default for f in dataclasses.fields(builder)}[name]
    return pyinspect.signature(builder).parameters[name].default


def builder_option(builder, flag: str, **kwargs):
    """A click option whose default is the builder's own (see `default_of`), shown in --help."""
    name = flag.lstrip("-").replace("-", "_")
    return click.option(flag, default=default_of(builder, name), show_default=True, **kwargs)

OUT = click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                   help="The store to write (.h5). Written to a temporary file, renamed when complete.")
FORCE = click.option("--force", is_flag=True, help="Replace an existing output written by cfbuild (never another file).")
STORE = click.argument("store", type=InputPath())


@click.group(name="cfbuild", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def main(debug, quiet):
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
    from cfpairs.check import format_summary, summarize
    from cfpairs.store import Store

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
    from cfpairs.check import verify_store

    problem = verify_store(store)
    if problem:
        click.echo(f"FAILED: {problem}", err=True)
        raise SystemExit(1)
    click.echo("ok")


@main.command()
@STORE
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--to", "to", required=True, type=click.Choice(["hf", "parquet"]),
              help="hf: a datasets.DatasetDict (save_to_disk); parquet: one file per split.")
@FORCE
def export(store, out_dir, to, force):
    """Export STORE as tables for other tools: one row per example, pair_id, labels, inputs.

    Written beside OUT_DIR under a temporary name and renamed when complete; store.json keeps the
    store's attributes. Region features are never copied (image_id and the mask are).

    \b
    Example:
      cfbuild export imdb.h5 --to hf imdb-hf
      python -c "import datasets; print(datasets.load_from_disk('imdb-hf'))"
    """
    from cfbuild.export import export_store

    rows = export_store(store, out_dir, to=to, force=force)
    click.echo(f"wrote {out_dir} ({to}): " + ", ".join(f"{name} {n} rows" for name, n in rows.items()))


@main.command()
@OUT
@builder_option(build_toy, "--n", type=click.IntRange(min=1),
              help="Training originals (val gets n/4, test and test_shifted n/2 each).")
@builder_option(build_toy, "--seed", type=SEED)
@builder_option(build_toy, "--spurious", type=FiniteFloat(0, 1),
              help="P(spurious coordinate agrees with the label) in train and val.")
@builder_option(build_toy, "--dim", type=click.IntRange(min=2),
              help="Vector width: causal, spurious and dim-2 noise coordinates.")
@FORCE
def toy(out, n, seed, spurious, dim, force):
    """The built-in toy store (an analogue of the paper's Fig. 3).

    Example: cfbuild toy --out toy.h5 --n 2000 --seed 0 --spurious 0.95
    """
    start = time.perf_counter()
    build_toy(out, n=n, seed=seed, spurious=spurious, dim=dim, force=force)
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.2f} s")


@main.command("toy-vqa")
@OUT
@builder_option(build_toy_regions, "--n", type=click.IntRange(min=4),
              help="Training questions (val gets n/4, test n/2); one image each.")
@builder_option(build_toy_regions, "--seed", type=SEED)
@builder_option(build_toy_regions, "--spurious", type=FiniteFloat(0, 1),
              help="P(the question's hint word names the answer) in train and val; random in test.")
@builder_option(build_toy_regions, "--cf-rate", type=FiniteFloat(0, 1),
              help="Share of train/val questions given a masked counterfactual.")
@FORCE
def toy_vqa(out, n, seed, spurious, cf_rate, force):
    """A toy VQA store (regions, soft labels) where a question word is a shortcut.

    Example: cfbuild toy-vqa --out toy-vqa.h5 && cftrain table toy-vqa.h5 --out runs/toy-vqa
    """
    build_toy_regions(out, n=n, seed=seed, spurious=spurious, cf_rate=cf_rate, force=force)
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


CAD_DIR = click.option("--cad-dir", required=True, type=INPUT_DIR,
                       help="Root of the CAD release (holds sentiment/ and NLI/).")


def max_tokens_option(builder):
    return builder_option(builder, "--max-tokens", type=click.IntRange(min=0),
                          help="Tokens kept per text (0: keep all, padded to the longest).")


def vocab_size_option(builder):
    return builder_option(builder, "--vocab-size", type=click.IntRange(min=1),
                          help="Most frequent training tokens kept (plus padding and unknown).")


UNVERIFIED = click.option("--allow-unverified-sources", is_flag=True,
                          help="Build even when a file differs from data_manifests/cad.json (recorded in sources).")


def _split_list(value):
    names = [s.strip() for s in value.split(",") if s.strip()] if value else None
    bad = [s for s in names or [] if s not in ("train", "val", "test")]
    if bad:
        raise click.BadParameter(f"unknown split(s) {bad}; choose from train, val, test", param_hint="--splits")
    return names


def cad_options(builder):
    """Options shared by the CAD presets (imdb, snli); defaults are the builder's."""
    def decorate(func):
        options = [
            CAD_DIR, OUT, max_tokens_option(builder), vocab_size_option(builder),
            click.option("--splits", callback=lambda ctx, p, v: _split_list(v),
                         help="Comma-separated splits that must be built (default: those whose files exist)."),
            UNVERIFIED, FORCE,
        ]
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


def _report(report):
    from cfbuild.report import format_report

    click.echo(format_report(report))


@main.command()
@cad_options(build_imdb)
def imdb(cad_dir, out, max_tokens, vocab_size, splits, allow_unverified_sources, force):
    """IMDb sentiment pairs from CAD's sentiment/combined/paired (pairs by batch_id).

    Example: cfbuild imdb --cad-dir counterfactually-augmented-data --out imdb.h5
    """
    _report(build_imdb(cad_dir, out, splits=splits, max_tokens=max_tokens, vocab_size=vocab_size,
                       allow_unverified=allow_unverified_sources, force=force))
    click.echo(f"wrote {out}")


@main.command()
@cad_options(build_snli)
def snli(cad_dir, out, max_tokens, vocab_size, splits, allow_unverified_sources, force):
    """SNLI pairs from CAD's NLI/original and NLI/revised_{premise,hypothesis}.

    Row k of original is the original of rows 2k and 2k+1 of each revised file.

    Example: cfbuild snli --cad-dir counterfactually-augmented-data --out snli.h5
    """
    _report(build_snli(cad_dir, out, splits=splits, max_tokens=max_tokens, vocab_size=vocab_size,
                       allow_unverified=allow_unverified_sources, force=force))
    click.echo(f"wrote {out}")


@main.command()
@click.option("--file", "train_file", required=True, type=InputPath(),
              help="Training rows (.csv, .tsv, .jsonl).")
@click.option("--file-val", type=InputPath())
@click.option("--file-test", type=InputPath())
@click.option("--text-col", required=True, help="The text column (the premise for text pairs).")
@click.option("--text2-col", help="A second text column (the hypothesis): makes a text_pair store.")
@click.option("--label-col", required=True)
@click.option("--pair-col", required=True, help="Rows sharing this value form a group: an original and its edits.")
@click.option("--original-col", help="A column marking the original of each group (1/true/yes/original); "
                                     "default: the group's first row.")
@builder_option(build_table, "--task", help="The store's task name.")
@OUT
@max_tokens_option(build_table)
@vocab_size_option(build_table)
@FORCE
def table(train_file, file_val, file_test, text_col, text2_col, label_col, pair_col, original_col, task, out,
          max_tokens, vocab_size, force):
    """A text store from your own counterfactual table.

    Example: cfbuild table --file pairs.csv --text-col text --label-col label --pair-col pair_id --out mine.h5
    """
    files = {"train": train_file, "val": file_val, "test": file_test}
    _report(build_table(files, out, text_cols=[c for c in (text_col, text2_col) if c], label_col=label_col,
                        pair_col=pair_col, original_col=original_col, task=task, max_tokens=max_tokens,
                        vocab_size=vocab_size, force=force))
    click.echo(f"wrote {out}")


@main.command("import")
@click.argument("folder", type=INPUT_DIR)
@OUT
@click.option("--max-tokens", type=click.IntRange(min=0),
              help="Tokens kept per text (0: all) [default: the exported store's own, else 0].")
@click.option("--vocab-size", type=click.IntRange(min=1),
              help="Most frequent training tokens kept [default: the exported store's own, else 20000].")
@FORCE
def import_command(folder, out, max_tokens, vocab_size, force):
    """A text store from tables in the layout `cfbuild export` writes (your own paired data too).

    FOLDER holds train.parquet (or .jsonl/.csv/.tsv) and optionally val and test, with columns
    text (or premise_text and hypothesis_text), label, pair_id (-1: unpaired), is_counterfactual,
    and optionally id and pair_kind; store.json, when there, gives the class names and task.

    \b
    Example:
      cfbuild export imdb.h5 --to parquet imdb-parquet
      cfbuild import imdb-parquet --out imdb-again.h5
    """
    _report(build_import(folder, out, max_tokens=max_tokens, vocab_size=vocab_size, force=force))
    click.echo(f"wrote {out}")


@main.command()
@click.option("--preset", required=True, type=click.Choice(["amazon", "yelp", "semeval", "multinli"]))
@click.option("--source", required=True, help="A local csv/tsv/jsonl/parquet file in the preset's layout, "
                                             "or the hub name (amazon_polarity, yelp_polarity, tweet_eval, multi_nli).")
@click.option("--vocab-from", required=True, type=InputPath(),
              help="The store whose vocabulary (and max tokens) the transfer set uses.")
@OUT
@builder_option(build_transfer, "--sample", type=click.IntRange(min=1))
@builder_option(build_transfer, "--seed", type=SEED)
@FORCE
def transfer(preset, source, vocab_from, out, sample, seed, force):
    """A zero-shot test store (single split `test`) for a trained text model.

    Example: cfbuild transfer --preset yelp --source yelp_test.csv --vocab-from imdb.h5 --out yelp.h5
    """
    _report(build_transfer(preset, source, vocab_from, out, sample=sample, seed=seed, force=force))
    click.echo(f"wrote {out}")


EXISTING_FILE = InputPath()


def feature_options(what: str, key: str):
    """--features (repeatable) and the --imgid2idx pickles of the HDF5 ones, shared by vqa and coco."""
    def decorate(func):
        func = click.option("--imgid2idx", "imgid2idx", multiple=True, type=EXISTING_FILE,
                            help=f"The {{{key}: row}} pickle of each HDF5 --features file, in the same order.")(func)
        return click.option("--features", "features", required=True, multiple=True, type=EXISTING_FILE,
                            help=f"{what} Repeat for several files.")(func)
    return decorate


@main.command()
@click.option("--vqacp-dir", required=True, type=INPUT_DIR,
              help="Holds vqacp_v2_{train,test}_{questions,annotations}.json.")
@feature_options("Bottom-up features: .tsv, or HDF5 (image_features, image_bb).", "image_id")
@click.option("--hints", type=EXISTING_FILE, help="Per-question per-box attention scores (.json or pickle).")
@click.option("--hat-dir", type=INPUT_DIR,
              help="Raw VQA-HAT maps <question_id>_<k>.png (instead of --hints).")
@OUT
@builder_option(VqaOptions, "--threshold", type=FiniteFloat(0, 1),
              help="Counterfactuals mask every box scored above this.")
@builder_option(VqaOptions, "--focused-threshold", type=FiniteFloat(0, 1),
              help="test_focused keeps only boxes scored at least this.")
@builder_option(VqaOptions, "--val-size", type=click.IntRange(min=1),
              help="Training questions held out as val.")
@builder_option(VqaOptions, "--seed", type=SEED, help="Seed of the val draw.")
@builder_option(VqaOptions, "--min-answer-count", type=click.IntRange(min=1),
              help="Answer vocabulary: training multiple-choice answers seen at least this often.")
@builder_option(VqaOptions, "--max-tokens", type=click.IntRange(min=1),
              help="Question tokens kept.")
@click.option("--materialize", is_flag=True, help="Copy the used images' features into the store (else: link).")
@click.option("--float16", is_flag=True, help="With --materialize: store features as float16.")
@click.option("--skip-missing-images", is_flag=True, help="Leave out (and report) questions whose image has no features.")
@FORCE
def vqa(vqacp_dir, features, imgid2idx, hints, hat_dir, out, threshold, focused_threshold, val_size, seed,
        min_answer_count, max_tokens, materialize, float16, skip_missing_images, force):
    """VQA-CP v2 store: counterfactuals mask the boxes human attention marks as relevant.

    \b
    Example:
      cfbuild vqa --vqacp-dir vqacp2 --features trainval_36.h5 --imgid2idx trainval36_imgid2idx.pkl \\
                  --hints hints.pkl --threshold 0.2 --out vqacp.h5
    """
    from cfbuild.sources.features import format_of

    if float16 and not materialize and any(format_of(p).linkable for p in features):
        raise click.UsageError("--float16 needs --materialize (linked features are left as they are)")
    options = VqaOptions(threshold=threshold, focused_threshold=focused_threshold, val_size=val_size, seed=seed,
                         min_answer_count=min_answer_count, materialize=materialize, float16=float16,
                         skip_missing_images=skip_missing_images, max_tokens=max_tokens)
    start = time.perf_counter()
    report = build_vqa(vqacp_dir, list(features), list(imgid2idx), out, hints=hints, hat_dir=hat_dir,
                       options=options, force=force)
    _report(report)
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")


@main.command()
@click.option("--instances-dir", required=True, type=INPUT_DIR,
              help="Holds instances_train2014.json (and instances_val2014.json for test).")
@click.option("--edited-dir", required=True, type=INPUT_DIR,
              help="Holds train2014/ and val2014/ with COCO_<split>_<image_id>_<target>.jpg (names only are read).")
@feature_options("Vectors keyed by image id (originals) and file stem (edits): .tsv, HDF5 or .npz.", "key")
@OUT
@builder_option(build_coco, "--val-size", type=click.IntRange(min=1),
              help="train2014 originals held out (with their edits) as val.")
@builder_option(build_coco, "--seed", type=SEED, help="Seed of the val draw.")
@builder_option(build_coco, "--edit-kind", type=click.Choice(["iv", "cv"]),
              help="iv: the name's target is the removed category id; cv: the removed annotation id.")
@FORCE
def coco(instances_dir, edited_dir, features, imgid2idx, out, val_size, seed, edit_kind, force):
    """COCO multi-label store: originals and their inpainted edits (Agarwal et al.).

    \b
    Example:
      cfbuild coco --instances-dir annotations --edited-dir edited --features coco_pooled.npz --out coco.h5
    """
    start = time.perf_counter()
    report = build_coco(instances_dir, edited_dir, list(features), list(imgid2idx), out, val_size=val_size,
                        seed=seed, edit_kind=edit_kind, force=force)
    _report(report)
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
