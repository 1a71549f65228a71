"""`cfbuild transfer`: zero-shot test stores (Amazon, Yelp, SemEval, MultiNLI) in a trained store's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfbuild.builders.textpairs import PairedSplit, write_text_store
from cfbuild.protocol import SEED_MAX, Builder, TextOptions, option, reference_of, register, run_builder
from cfbuild.sources.tables import load_with_datasets, read_table
from cfpairs.errors import UserError
from cfpairs.store import Store, describe_source


@dataclass(frozen=True)
class Convention:
    """One way a source writes its labels: value -> class name, and the values dropped on purpose."""
    name: str
    labels: dict        # source label -> class name (matched to the trained store's classes, case aside)
    dropped: tuple = ()  # values left out by design (SemEval's neutral tweets), counted in the report


@dataclass(frozen=True)
class Preset:
    hub: tuple          # (name, config, split) for load_dataset
    text_cols: tuple    # joined with a space when several (amazon: title + content)
    pair_kind: bool     # True: premise/hypothesis text pair
    conventions: tuple  # Convention: the one whose values the source uses is chosen, else refused


POLARITY = Convention("0 = negative, 1 = positive (Hugging Face)", {"0": "negative", "1": "positive"})
POLARITY_RAW = Convention("1 = negative, 2 = positive (the original CSV release)", {"1": "negative", "2": "positive"})
NLI = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"}
PRESETS = {
    "amazon": Preset(("amazon_polarity", None, "test"), ("title", "content"), False, (POLARITY, POLARITY_RAW)),
    "yelp": Preset(("yelp_polarity", None, "test"), ("text",), False, (POLARITY, POLARITY_RAW)),
    "semeval": Preset(("tweet_eval", "sentiment", "test"), ("text",), False,
                      (Convention("0 = negative, 1 = neutral (dropped), 2 = positive (tweet_eval)",
                                  {"0": "negative", "2": "positive"}, ("1",)),)),
    "multinli": Preset(("multi_nli", None, "validation_matched"), ("premise", "hypothesis"), True,
                       (Convention("0 = entailment, 1 = neutral, 2 = contradiction (Hugging Face)",
                                   {"0": "entailment", "1": "neutral", "2": "contradiction"}),
                        Convention("gold_label words; '-' (no consensus) dropped (the original JSONL)", NLI, ("-",)))),
}


def convention_of(values: list, preset: str, source: str) -> Convention:
    """The preset's convention whose values the source uses: every value is one of its labels or
    drops; a source that fits none or several is refused, naming what it found."""
    found = sorted(set(values))
    fitting = [c for c in PRESETS[preset].conventions if set(found) <= set(c.labels) | set(c.dropped)]
    shown = ", ".join(repr(v) for v in found[:8]) + (" ..." if len(found) > 8 else "")
    conventions = "; ".join(c.name for c in PRESETS[preset].conventions)
    if not fitting:
        raise UserError(f"{source}: labels {shown} fit none of the preset {preset!r}'s conventions ({conventions})")
    if len(fitting) > 1:
        raise UserError(f"{source}: labels {shown} fit several of the preset {preset!r}'s conventions "
                        f"({conventions}): too few label values to tell")
    return fitting[0]


def class_indexes(convention: Convention, classes: list, values: list, vocab_from, allow=()) -> dict:
    """{source label: class index in the trained store}, by class name; a class the convention
    declares that no row has is refused unless allowed (a preset never drops a class quietly)."""
    lowered = [c.lower() for c in classes]
    unknown = sorted({name for name in convention.labels.values() if name not in lowered})
    if unknown:
        raise UserError(f"--vocab-from {vocab_from}: its classes {classes} do not name the preset's {unknown}")
    absent = sorted({name for value, name in convention.labels.items() if value not in set(values)})
    if absent and "missing-class" not in allow:
        raise UserError(f"no row has the label of class {absent[0]!r} ({convention.name}); pass --allow missing-class "
                        "if the source really has none")
    return {value: lowered.index(name) for value, name in convention.labels.items()}


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


@dataclass(kw_only=True)
class TransferOptions(TextOptions):
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

    def check(self, o):
        super().check(o)
        if o.vocab_size is not None:
            raise UserError(f"--vocab-size {o.vocab_size}: a transfer store takes --vocab-from's vocabulary whole")

    def build(self, o, driver):
        """One `test` split: a seeded sample of `source`, tokenised with `vocab_from`'s vocabulary."""
        preset = PRESETS[o.preset]
        with Store(o.vocab_from) as trained:
            vocab, classes, input_kind = trained.vocab, trained.class_names, trained.input_kind
            text = driver.text(reference_of(trained.build, trained.task))  # the trained store's settings
        if vocab is None or input_kind != ("text_pair" if preset.pair_kind else "text"):
            raise UserError(f"{o.vocab_from}: a {input_kind} store cannot give the vocabulary for preset {o.preset!r}")
        columns, source_entry = load_rows(o.source, preset)
        missing = [c for c in (*preset.text_cols, "label") if c not in columns]
        if missing:
            raise UserError(f"{o.source}: missing column(s) {missing} for preset {o.preset!r}")
        values = [v.strip() for v in columns["label"]]
        convention = convention_of(values, o.preset, o.source)
        index = class_indexes(convention, classes, values, o.vocab_from, o.allow)
        keep = np.array([i for i, v in enumerate(values) if v in index], dtype=np.int64)
        if not len(keep):
            raise UserError(f"{o.source}: no rows with a label the preset {o.preset!r} keeps ({convention.name})")
        chosen = np.sort(np.random.default_rng(o.seed).choice(keep, size=min(o.sample, len(keep)), replace=False))
        split = PairedSplit()
        for i in chosen.tolist():
            texts = [columns[c][i] for c in preset.text_cols]
            texts = texts if preset.pair_kind else [" ".join(t for t in texts if t)]
            split.add(f"{o.preset}:{i}", texts, index[values[i]], False)
        report = {"rows_in_source": len(columns["label"]), "rows_with_kept_labels": int(len(keep)),
                  "label_convention": convention.name,
                  "dropped_labels": len(columns["label"]) - int(len(keep)), "sampled": int(len(chosen))}
        driver.sources.append(source_entry)
        write_text_store(driver, task=text.task, class_names=classes, splits={"test": split}, max_tokens=text.max_tokens,
                         vocab_size=len(vocab), vocab=vocab, extra_report=report, pairs_expected=False)


def build_transfer(preset: str, source: str, vocab_from, out, force: bool = False, **options) -> dict:
    """A transfer store (`TransferOptions`) from Python."""
    return run_builder("transfer", out, force, preset=preset, source=str(source), vocab_from=Path(vocab_from),
                       **options)
