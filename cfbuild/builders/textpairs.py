"""The machinery behind every text store: `imdb`, `snli`, `table` and `transfer` are presets.

A preset turns its files into `PairedSplit`s (rows + (original, edit) pairs);
`write_text_store` tokenises, builds the vocabulary from `train`, drops pairs
whose inputs have the same tokens, flags low-overlap pairs, and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cfpairs.errors import UserError
from cfpairs.progress import Progress
from cfbuild.labels import check_some_pair
from cfbuild.text import build_vocab, encode, jaccard, tokenize

LOW_OVERLAP = 0.2
FIELD_PREFIXES = {1: ("",), 2: ("premise_", "hypothesis_")}


@dataclass
class PairedSplit:
    """Rows of one split and the pairs between them, before tokenisation."""
    ids: list = field(default_factory=list)
    texts: list = field(default_factory=list)        # one tuple of strings per row
    labels: list = field(default_factory=list)
    is_counterfactual: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)         # more per-row columns, e.g. batch_id
    pairs: list = field(default_factory=list)         # (original row, edited row, kind, report key[, "keep"])
    notes: list = field(default_factory=list)         # report lines from the preset

    def add(self, row_id, texts, label, is_cf, **extra) -> int:
        self.ids.append(row_id)
        self.texts.append(tuple(texts))
        self.labels.append(label)
        self.is_counterfactual.append(is_cf)
        for key, value in extra.items():
            self.extra.setdefault(key, []).append(value)
        return len(self.ids) - 1


def _pair_report(split: PairedSplit, tokens: list) -> tuple[list, dict]:
    """Keep pairs with distinct inputs; report dropped, low-overlap and truncation-identical ones."""
    kept, identical, same_tokens, low = [], [], [], []
    for a, b, kind, key, *relation in split.pairs:
        if split.texts[a] == split.texts[b]:
            identical.append(key)
            continue
        if all(t[a] == t[b] for t in tokens):  # differ only in case, spacing or markup
            same_tokens.append(key)
            continue
        kept.append((a, b, kind, relation[0] if relation else "flip"))
        overlap = jaccard([w for t in tokens for w in t[a]], [w for t in tokens for w in t[b]])
        if overlap < LOW_OVERLAP:
            low.append({"pair": key, "jaccard": round(overlap, 3)})
    report = {"examples": len(split.ids), "originals": len(split.ids) - sum(split.is_counterfactual),
              "pairs": len(kept), "pairs_dropped_identical": identical,
              "pairs_dropped_same_tokens": same_tokens, "low_overlap_pairs": low,
              "notes": split.notes}
    return kept, report


def check_pairs(split: PairedSplit, class_names: list) -> None:
    """Every flip pair must join two labels, every keep pair one (checked before any tokenising)."""
    for a, b, kind, key, *relation in split.pairs:
        if relation and relation[0] == "keep":
            if split.labels[a] != split.labels[b]:
                raise UserError(f"{split.ids[a]} and {split.ids[b]} ({key}): a keep pair joins two labels")
            continue
        if split.labels[a] == split.labels[b]:
            raise UserError(f"{split.ids[a]} and {split.ids[b]} ({key}): original and edit have the same label "
                            f"{class_names[split.labels[a]]!r}; a pair needs two labels")


def _why_unpaired(splits: dict) -> str:
    notes = [note for split in splits.values() for note in split.notes if "same label" in note]
    return notes[0] if notes else ""


def empty_texts(split: PairedSplit) -> list:
    """Ids of rows whose text (every text field) is empty or blank: kept, but reported."""
    return [i for i, texts in zip(split.ids, split.texts) if not any(t.strip() for t in texts)]


def write_text_store(driver, *, task: str, class_names: list, splits: dict, max_tokens: int,
                     vocab_size: int, vocab: list | None = None, extra_report: dict | None = None,
                     vocab_split: str = "train", allow=(), pairs_expected: bool = True) -> dict:
    """Tokenise, pair, validate and write `splits` ({name: PairedSplit}) through the builder's
    driver (`cfbuild.protocol.Driver`); the report goes to the driver (and is returned). A build
    that would hold no pair is refused (`pairs_expected`; `allow` "no-pairs" builds it)."""
    empty = [name for name, split in splits.items() if not split.ids]
    if empty:
        raise UserError(f"split {empty[0]}: no rows to build from")
    n_fields = len(next(iter(splits.values())).texts[0])
    prefixes = FIELD_PREFIXES[n_fields]
    for split in splits.values():
        check_pairs(split, class_names)
    if pairs_expected:
        check_some_pair({name: len(split.pairs) for name, split in splits.items()}, allow, _why_unpaired(splits))
    tokens = {}
    with Progress(len(splits), "tokenising", unit="split") as bar:
        for name, s in splits.items():
            tokens[name] = [tokenize(t[f] for t in s.texts) for f in range(n_fields)]
            bar.update()
    if vocab is None:
        if vocab_split not in splits:
            raise UserError(f"the vocabulary comes from the {vocab_split} split, which is missing")
        vocab = build_vocab([t for field_tokens in tokens[vocab_split] for t in field_tokens], vocab_size)
    report = driver.report
    report.update(extra_report or {}, vocab_size=len(vocab), splits={})
    kept = {}
    for name, split in splits.items():
        kept[name], report["splits"][name] = _pair_report(split, tokens[name])
    if pairs_expected:
        check_some_pair({name: len(pairs) for name, pairs in kept.items()}, allow,
                        "every pair's original and edit have the same tokens")
    with driver.writer(task=task, input_kind="text_pair" if n_fields == 2 else "text",
                       label_kind="binary" if len(class_names) == 2 else "multiclass",
                       class_names=class_names) as writer:
        writer.write_vocab(vocab)
        for name, split in splits.items():
            truncated_same = sum(all(t[a][:max_tokens] == t[b][:max_tokens] for t in tokens[name])
                                 for a, b, *_ in kept[name]) if max_tokens else 0
            report["splits"][name]["pairs_same_after_truncation"] = truncated_same
            blank = empty_texts(split)
            report["splits"][name].update(empty_texts=len(blank), empty_texts_first=blank[:10])
            examples = {"id": split.ids, "is_counterfactual": np.array(split.is_counterfactual, bool),
                        "label": np.array(split.labels, np.int64), **split.extra}
            for prefix, field_texts, field_tokens in zip(prefixes, zip(*split.texts), tokens[name]):
                ids, lengths = encode(field_tokens, vocab, max_tokens)
                examples.update({f"{prefix}text": list(field_texts), f"{prefix}tokens": ids, f"{prefix}length": lengths})
            writer.write_split(name, examples, [(a, b) for a, b, *_ in kept[name]], [k for _, _, k, _ in kept[name]],
                               pairs_relation=[r for *_, r in kept[name]])
    return report
