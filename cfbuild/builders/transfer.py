"""`cfbuild transfer`: zero-shot test stores (Amazon, Yelp, SemEval, MultiNLI) in a trained store's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfbuild.builders.textpairs import PairedSplit, write_text_store
from cfpairs.errors import UserError
from cfbuild.sources.tables import load_with_datasets, read_table
from cfpairs.store import Store, describe_source
from cfpairs.outputs import check_output


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


def build_transfer(preset_name: str, source: str, vocab_from, out, *, sample: int = 2000, seed: int = 0,
                   force: bool = False) -> dict:
    """A store with one `test` split: a seeded sample of `source`, tokenised with `vocab_from`'s vocabulary."""
    check_output(out, "store", force, inputs=[vocab_from, source])  # before any work
    preset = PRESETS[preset_name]
    with Store(vocab_from) as trained:
        vocab, task, classes = trained.vocab, trained.task, trained.class_names
        max_tokens = trained.build.get("parameters", {}).get("max_tokens", 32)
        input_kind = trained.input_kind
    if vocab is None or input_kind != ("text_pair" if preset.pair_kind else "text"):
        raise UserError(f"{vocab_from}: a {input_kind} store cannot give the vocabulary for preset {preset_name!r}")
    columns, source_entry = load_rows(source, preset)
    missing = [c for c in (*preset.text_cols, "label") if c not in columns]
    if missing:
        raise UserError(f"{source}: missing column(s) {missing} for preset {preset_name!r}")
    keep = np.array([i for i, v in enumerate(columns["label"]) if v in preset.labels], dtype=np.int64)
    if not len(keep):
        raise UserError(f"{source}: no rows with a label the preset {preset_name!r} keeps ({sorted(preset.labels)})")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(keep, size=min(sample, len(keep)), replace=False))
    split = PairedSplit()
    for i in chosen.tolist():
        texts = [columns[c][i] for c in preset.text_cols]
        texts = texts if preset.pair_kind else [" ".join(t for t in texts if t)]
        split.add(f"{preset_name}:{i}", texts, preset.labels[columns["label"][i]], False)
    params = {"preset": preset_name, "source": source, "vocab_from": str(vocab_from), "sample": sample,
              "seed": seed, "max_tokens": max_tokens}
    report = {"rows_in_source": len(columns["label"]), "rows_with_kept_labels": int(len(keep)),
              "dropped_labels": len(columns["label"]) - int(len(keep)), "sampled": int(len(chosen))}
    return write_text_store(out, task=task, class_names=classes, splits={"test": split}, max_tokens=max_tokens,
                            vocab_size=len(vocab), command="cfbuild transfer", parameters=params,
                            sources=[source_entry], force=force, vocab=vocab, report=report)
