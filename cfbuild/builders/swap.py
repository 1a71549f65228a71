"""`cfbuild swap`: invariance (keep) pairs from a text store by substituting terms from a list, as
counterfactual fairness does (Garg et al. 2019; TensorFlow Model Remediation's
`build_counterfactual_dataset`): each row where a listed term occurs gets a copy with every term
swapped for its partner (whole words, case kept, both directions at once), paired with it as a
`keep` pair (the label stays; the prediction should not move). The new store keeps the source's
rows and pairs in every split; its vocabulary is rebuilt with the source's build parameters, so
swapped-in words are not unknown. Originals are swapped by default; `--edited` swaps edited rows
too (pairs between two edited rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from cfbuild.builders.textpairs import PairedSplit, write_text_store
from cfbuild.protocol import Builder, Provenance, TextOptions, option, reference_of, register, run_builder
from cfpairs.api import PairStore
from cfpairs.errors import UserError
from cfpairs.store import describe_source

SHIPPED = {"gender": "terms_gender.txt"}  # lists in data_manifests/, named by --terms
TEXT_FIELDS = {"text": ("text",), "text_pair": ("premise_text", "hypothesis_text")}


def terms_path(terms: str) -> Path:
    """A shipped list's file (by name) or the user's file."""
    if terms in SHIPPED:
        return Path(str(resources.files("data_manifests").joinpath(SHIPPED[terms])))
    return Path(terms)


def read_terms(path: Path) -> list:
    """[(a, b)] from one `a,b` pair a line (blank lines and `#` comments skipped); a term given
    twice, a line without two terms or a pair of one term is refused, naming the line."""
    pairs, seen = [], {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip().lower() for p in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise UserError(f"{path}: line {number}: expected two terms as a,b, found {line[:60]!r}")
        if parts[0] == parts[1]:
            raise UserError(f"{path}: line {number}: {parts[0]!r} paired with itself")
        for term in parts:
            if term in seen:
                raise UserError(f"{path}: line {number}: {term!r} is also on line {seen[term]} (a term swaps one way)")
            seen[term] = number
        pairs.append(tuple(parts))
    if not pairs:
        raise UserError(f"{path}: no term pairs (one a,b a line)")
    return pairs


class Swapper:
    """Whole-word substitution of every listed term by its partner, case kept, in one pass."""

    def __init__(self, pairs: list):
        self.partner = {a: b for a, b in pairs} | {b: a for a, b in pairs}
        words = sorted(self.partner, key=len, reverse=True)
        self.pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)
        self.counts = {f"{a},{b}": 0 for a, b in pairs}
        self.pair_of = {t: f"{a},{b}" for a, b in pairs for t in (a, b)}

    def swap(self, text: str) -> tuple[str, set]:
        """(the text with every term swapped, the term pairs it used)."""
        used = set()

        def replace(match):
            word = match.group(0)
            used.add(self.pair_of[word.lower()])
            new = self.partner[word.lower()]
            return new.upper() if word.isupper() and len(word) > 1 else new.capitalize() if word[0].isupper() else new
        return self.pattern.sub(replace, text), used


@dataclass(kw_only=True)
class SwapOptions(TextOptions, Provenance):
    from_store: Path | None = option(None, help="The text store whose rows are swapped (every split).",
                                     inputs="file", flag="--from")
    file: Path | None = option(None, help="Instead of --from: a table of rows (.csv, .tsv, .jsonl, .parquet) as "
                                          "cfbuild table reads it (--text-col, --label-col, --pair-col): one split, "
                                          "train.", inputs="file")
    text_col: str | None = option(None, help="With --file: the text column (the premise for text pairs).")
    text2_col: str | None = option(None, help="With --file: a second text column (the hypothesis).")
    label_col: str | None = option(None, help="With --file: the label column.")
    pair_col: str | None = option(None, help="With --file: rows sharing this value form a group (an original and "
                                             "its edits); a group of one row stands alone.")
    terms: str = option(help=f"A term list, one a,b pair a line, or a shipped list's name ({', '.join(SHIPPED)}).")
    edited: bool = option(False, help="Swap edited rows too (keep pairs between two edited rows), not only "
                                      "originals.")
    only: list = option([], help="Only these splits get swapped rows (repeat it; e.g. val and test: the keep "
                                 "pairs measure a model trained without them) [default: every split].",
                        multiple=True)


@register
class SwapBuilder(Builder):
    """Keep pairs by term substitution: each swapped row paired with its source row (same label)."""
    name, Options = "swap", SwapOptions
    summary = "Invariance (keep) pairs: rows with listed terms swapped, beside the source's rows and pairs."
    example = "cfbuild swap --from imdb.h5 --terms gender --out imdb-swap.h5"

    def extra_inputs(self, options) -> list:
        return [terms_path(options.terms)] if options.terms not in SHIPPED else []

    def check(self, options) -> None:
        super().check(options)
        if (options.from_store is None) == (options.file is None):
            raise UserError("give --from STORE or --file TABLE (one of them)")
        if options.file is not None:
            missing = [f"--{n.replace('_', '-')}" for n in ("text_col", "label_col", "pair_col")
                       if getattr(options, n) is None]
            if missing:
                raise UserError(f"--file needs {', '.join(missing)} (the table's columns, as cfbuild table takes them)")
        elif options.text_col or options.text2_col or options.label_col or options.pair_col:
            raise UserError("--text-col, --text2-col, --label-col and --pair-col are for --file")

    def build(self, o, driver):
        path = terms_path(o.terms)
        if not path.is_file():
            raise UserError(f"--terms {o.terms}: no such file (or a shipped list: {', '.join(SHIPPED)})")
        swapper = Swapper(read_terms(path))
        if o.file is not None:
            return self.build_table(o, driver, swapper, path)
        with PairStore(o.from_store) as store:
            if store.input_kind not in TEXT_FIELDS or store.label_kind not in ("binary", "multiclass"):
                raise UserError(f"--from {o.from_store}: a {store.input_kind}/{store.label_kind} store; swap reads "
                                "text and text-pair stores with one class per row")
            unknown = sorted(set(o.only) - set(store.splits))
            if unknown:
                raise UserError(f"--only {unknown[0]}: {o.from_store} has splits {', '.join(store.splits)}")
            splits = {name: add_swaps(paired_split(store[name], store.input_kind), swapper, o.edited,
                                      swap=not o.only or name in o.only) for name in store.splits}
            driver.sources.extend([*store.sources, {**describe_source(o.from_store), "license": _one_license(store),
                                                    "citation": _one_citation(store)}, describe_source(path)])
            text, classes, build = driver.text(reference_of(store.build, store.task)), store.class_names, store.build
        driver.report["swap"] = _report(o, swapper, splits, {"source_digest": _digest(o.from_store),
                                                             "source_build": build.get("command")})
        return write_text_store(driver, task=text.task, class_names=classes, splits=splits,
                                max_tokens=text.max_tokens, vocab_size=text.vocab_size, allow=text.allow)

    def build_table(self, o, driver, swapper: Swapper, terms_file: Path) -> dict:
        """--file: the table's rows and pairs as `cfbuild table` makes them, then the swaps (split train)."""
        from cfbuild.builders.table import Layout, table_split  # noqa: PLC0415

        text = driver.text()
        layout = Layout(tuple(c for c in (o.text_col, o.text2_col) if c), o.label_col, o.pair_col)
        split, classes = table_split(o.file, layout, classes=None, allow=text.allow)
        splits = {"train": add_swaps(split, swapper, o.edited)}
        driver.sources.extend([describe_source(o.file), describe_source(terms_file)])
        driver.report["swap"] = _report(o, swapper, splits, {})
        return write_text_store(driver, task=text.task, class_names=classes, splits=splits,
                                max_tokens=text.max_tokens, vocab_size=text.vocab_size, allow=text.allow)


def paired_split(view, input_kind: str) -> PairedSplit:
    """A store's split as the builders' rows and pairs (relations kept)."""
    ex, out = view.examples, PairedSplit()
    texts = [ex[f] for f in TEXT_FIELDS[input_kind]]
    labels, ids, is_cf = np.asarray(ex["label"]), ex["id"], np.asarray(ex["is_counterfactual"])
    for row in range(len(view)):
        out.add(str(ids[row]), [str(t[row]) for t in texts], int(labels[row]), bool(is_cf[row]))
    for (a, b), kind, relation in zip(view.pairs, view.pair_kinds, view.pair_relations):
        out.pairs.append((int(a), int(b), str(kind), f"pair {ids[a]}", str(relation)))
    return out


def add_swaps(split: PairedSplit, swapper: Swapper, edited: bool, swap: bool = True) -> PairedSplit:
    """`split` with (`swap`) each original's swapped copy (`edited`: each edited row's too) and the
    keep pair between them; a row that is itself a swapped copy is not swapped back."""
    swapped_from = {b for a, b, _, _, *r in split.pairs if r and r[0] == "keep"}
    for row in range(len(split.ids) if swap else 0):
        if (split.is_counterfactual[row] and not edited) or row in swapped_from:
            continue
        new, used = zip(*(swapper.swap(t) for t in split.texts[row]))
        if new != split.texts[row]:
            for key in set().union(*used):
                swapper.counts[key] += 1
            copy = split.add(f"{split.ids[row]}|swapped", list(new), split.labels[row], True,
                             **{key: values[row] for key, values in split.extra.items()})  # e.g. its source line
            split.pairs.append((row, copy, "swapped", f"swap of {split.ids[row]}", "keep"))
    return split


def _report(o, swapper: Swapper, splits: dict, more: dict) -> dict:
    return {"terms": str(o.terms), "rows_changed_per_term": swapper.counts,
            "swapped_rows": {n: sum(len(p) > 4 and p[4] == "keep" for p in s.pairs) for n, s in splits.items()},
            **more}


def _one_license(store) -> str | None:
    found = {s.get("license") for s in store.sources if s.get("license")}
    return found.pop() if len(found) == 1 else None


def _one_citation(store) -> str | None:
    found = {s.get("citation") for s in store.sources if s.get("citation")}
    return found.pop() if len(found) == 1 else None


def _digest(path) -> str:
    with PairStore(path) as store:
        return store.digest


def build_swap(from_store, terms, out, edited: bool = False, only=(), force: bool = False) -> dict:
    """The `swap` builder from Python."""
    return run_builder("swap", out, force, from_store=Path(from_store), terms=str(terms), edited=edited,
                       only=list(only))
