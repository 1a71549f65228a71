"""`cfbuild transfer`: zero-shot test stores (Amazon, Yelp, SemEval, MultiNLI) in a trained store's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfbuild.builders.textpairs import PairedSplit, write_text_store
from cfbuild.protocol import SEED_MAX, Builder, option, register, run_builder
from cfbuild.sources.tables import load_with_datasets, read_table
from cfpairs.errors import UserError
from cfpairs.store import Store, describe_source


@dataclass(frozen=True)
class Preset:
    hub: tuple          # (name, config, split) for load_dataset
    text_cols: tuple    # joined with a space when several (amazon: title + content)
    pair_kind: bool     # True: premise/hypothesis text pair
    labels: dict        # source label -> class index; other labels are dropped and counted


PRESETS = {
    "amazon": Preset(("amazon_polarity", None, "test"), ("title", "content"), False, {"0": 0, "1": 1}),
    "yelp": Preset(("yelp_polarity", None, "test"), ("text",), False, {"0": 0, "1": 1}),
    "semeval": Preset(("tweet_eval", "sentiment", "test"), ("text",), False, {"0": 0, "2": 1}),
    "multinli": Preset(("multi_nli", None, "validation_matched"), ("premise", "hypothesis"), True,
                       {"0": 0, "1": 1, "2": 2}),
}


def load_rows(source: str, preset: Preset) -> tuple[dict, dict]:
    """Columns of strings from a local file (csv/tsv/json/jsonl/parquet) or a hub dataset name."""
    path = Path(source)
    if path.exists():
        return read_table(path).columns, describe_source(path, None)
    name, config, split = preset.hub
    if source != name:
        raise UserError(f"{source}: no such file, and not the preset's hub dataset {name!r}")
    return _via_datasets(name, config, split=split), {"file": f"hub:{name}/{config or ''}/{split}"}


def _via_datasets(*args, **kwargs) -> dict:
    table = load_with_datasets(*args, what=f"cannot load {args[0]} through datasets", **kwargs)
    return {c: [str(v) for v in table[c]] for c in table.column_names}


@dataclass
class TransferOptions:
    preset: str = option(help="The transfer set's layout and labels.", choices=tuple(PRESETS))
    source: str = option(help="A local csv/tsv/jsonl/parquet file in the preset's layout, or the hub name "
                              "(amazon_polarity, yelp_polarity, tweet_eval, multi_nli).")
    vocab_from: Path = option(help="The store whose vocabulary (and max tokens) the transfer set uses.", inputs="file")
    sample: int = option(2000, help="Rows sampled from the source (seeded).", low=1)
    seed: int = option(0, help="Seed of the sample.", low=0, high=SEED_MAX)


@register
class Transfer(Builder):
    name, Options = "transfer", TransferOptions
    summary = "A zero-shot test store (single split `test`) in a trained store's vocabulary."
    example = "cfbuild transfer --preset yelp --source yelp_test.csv --vocab-from imdb.h5 --out yelp.h5"
    splits = ("test",)

    def extra_inputs(self, options):
        return [options.source] if Path(options.source).exists() else []

    def build(self, o, driver):
        """One `test` split: a seeded sample of `source`, tokenised with `vocab_from`'s vocabulary."""
        preset = PRESETS[o.preset]
        with Store(o.vocab_from) as trained:
            vocab, task, classes = trained.vocab, trained.task, trained.class_names
            max_tokens = trained.build.get("parameters", {}).get("max_tokens", 32)
            input_kind = trained.input_kind
        if vocab is None or input_kind != ("text_pair" if preset.pair_kind else "text"):
            raise UserError(f"{o.vocab_from}: a {input_kind} store cannot give the vocabulary for preset {o.preset!r}")
        columns, source_entry = load_rows(o.source, preset)
        missing = [c for c in (*preset.text_cols, "label") if c not in columns]
        if missing:
            raise UserError(f"{o.source}: missing column(s) {missing} for preset {o.preset!r}")
        keep = np.array([i for i, v in enumerate(columns["label"]) if v in preset.labels], dtype=np.int64)
        if not len(keep):
            raise UserError(f"{o.source}: no rows with a label the preset {o.preset!r} keeps ({sorted(preset.labels)})")
        chosen = np.sort(np.random.default_rng(o.seed).choice(keep, size=min(o.sample, len(keep)), replace=False))
        split = PairedSplit()
        for i in chosen.tolist():
            texts = [columns[c][i] for c in preset.text_cols]
            texts = texts if preset.pair_kind else [" ".join(t for t in texts if t)]
            split.add(f"{o.preset}:{i}", texts, preset.labels[columns["label"][i]], False)
        report = {"rows_in_source": len(columns["label"]), "rows_with_kept_labels": int(len(keep)),
                  "dropped_labels": len(columns["label"]) - int(len(keep)), "sampled": int(len(chosen))}
        driver.sources.append(source_entry)
        write_text_store(driver, task=task, class_names=classes, splits={"test": split}, max_tokens=max_tokens,
                         vocab_size=len(vocab), vocab=vocab, extra_report=report)


def build_transfer(preset: str, source: str, vocab_from, out, force: bool = False, **options) -> dict:
    """A transfer store (`TransferOptions`) from Python."""
    return run_builder("transfer", out, force, preset=preset, source=str(source), vocab_from=Path(vocab_from),
                       **options)
