"""Presets over `textpairs` for the CAD release (Kaushik et al.): IMDb sentiment and SNLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfbuild.builders.textpairs import PairedSplit
from cfbuild.manifest import SourceLedger
from cfbuild.protocol import Builder, TextOptions, option, register, run_builder
from cfbuild.sources.tables import read_table
from cfbuild.text import jaccard, tokenize
from cfpairs.errors import UserError
from cfbuild.builders.textpairs import write_text_store

SPLIT_FILES = {"train": "train", "val": "dev", "test": "test"}
SENTIMENT = {"Negative": 0, "Positive": 1}
SENTIMENT_CLASSES = ["negative", "positive"]
NLI_CLASSES = ["entailment", "neutral", "contradiction"]


def available_splits(cad_dir, pattern: str, wanted: list | None) -> tuple[list, list]:
    """Splits whose files exist, and the missing ones; a missing split in `wanted` is an error."""
    present, missing = [], []
    for split, stem in SPLIT_FILES.items():
        files = [Path(cad_dir) / p.format(stem) for p in pattern.split(",")]
        absent = [str(f) for f in files if not f.is_file()]
        if wanted and split not in wanted:
            continue
        if absent and wanted:
            raise UserError(f"split {split!r} was asked for but {absent[0]} does not exist")
        (missing if absent else present).append(split)
    return present, missing


def _label(table, column: str, row: int, mapping: dict) -> int:
    value = table.columns[column][row]
    if value not in mapping:
        raise UserError(f"{table.path}: line {table.line(row)}: unknown label {value!r} "
                        f"(expected one of {', '.join(mapping)})")
    return mapping[value]


def imdb_split(ledger: SourceLedger, split: str) -> PairedSplit:
    """Pairs of `sentiment/combined/paired/<split>_paired.tsv`, grouped by batch_id."""
    stem = SPLIT_FILES[split]
    table = read_table(ledger.check(f"sentiment/combined/paired/{stem}_paired.tsv"))
    table.require("Sentiment", "Text", "batch_id")
    groups: dict[str, list[int]] = {}
    for row, batch in enumerate(table.columns["batch_id"]):
        groups.setdefault(batch, []).append(row)
    originals = set()
    orig_path = Path(ledger.root) / f"sentiment/orig/{stem}.tsv"
    if orig_path.is_file():
        orig = read_table(ledger.check(f"sentiment/orig/{stem}.tsv"))
        orig.require("Text")
        originals = set(orig.columns["Text"])
    out = PairedSplit()
    if not orig_path.is_file():
        out.notes.append(f"{orig_path} absent: the first row of each pair is taken as the original")
    for batch, rows in groups.items():
        if len(rows) != 2:
            lines = ", ".join(str(table.line(r)) for r in rows)
            raise UserError(f"{table.path}: batch_id {batch!r} has {len(rows)} rows (lines {lines}); a pair needs 2")
        found = [r for r in rows if table.columns["Text"][r] in originals]
        if len(found) != 1:
            if orig_path.is_file():
                out.notes.append(f"batch_id {batch}: {'both' if found else 'neither'} rows found in "
                                 f"sentiment/orig/{stem}.tsv; the first row is taken as the original")
            found = [rows[0]]
        order = [found[0], rows[1] if found[0] == rows[0] else rows[0]]
        made = [out.add(f"{batch}:{role}", (table.columns["Text"][r],), _label(table, "Sentiment", r, SENTIMENT),
                        role == "edited", batch_id=batch, source_line=table.line(r))
                for r, role in zip(order, ("original", "edited"))]
        out.pairs.append((made[0], made[1], "edited", f"batch_id {batch}"))
    return out


def _norm(text: str) -> str:
    return " ".join(text.split())


def snli_split(ledger: SourceLedger, split: str) -> PairedSplit:
    """Row k of NLI/original is the original of rows 2k, 2k+1 of both revised files."""
    stem = SPLIT_FILES[split]
    original = read_table(ledger.check(f"NLI/original/{stem}.tsv"))
    edits = {kind: read_table(ledger.check(f"NLI/revised_{kind}/{stem}.tsv")) for kind in ("premise", "hypothesis")}
    for table in (original, *edits.values()):
        table.require("sentence1", "sentence2", "gold_label")
    for kind, table in edits.items():
        if len(table) != 2 * len(original):
            raise UserError(f"{table.path}: {len(table)} rows, expected twice the {len(original)} of {original.path}")
    out = PairedSplit()
    changed_other = []
    for k in range(len(original)):
        row = original.columns
        texts = (row["sentence1"][k], row["sentence2"][k])
        o = out.add(f"original:{original.line(k)}", texts, _label(original, "gold_label", k, _NLI), False)
        for kind, table in edits.items():
            for r in (2 * k, 2 * k + 1):
                edit = (table.columns["sentence1"][r], table.columns["sentence2"][r])
                kept = 1 if kind == "premise" else 0  # the sentence an edit of this kind keeps
                if edit[kept] != texts[kept]:
                    _check_aligned(table, r, original, k, texts, edit)
                    changed_other.append(f"revised_{kind} line {table.line(r)}")
                e = out.add(f"revised_{kind}:{table.line(r)}", edit, _label(table, "gold_label", r, _NLI), True)
                out.pairs.append((o, e, f"edited_{kind}", f"revised_{kind} line {table.line(r)}"))
    if changed_other:
        out.notes.append(f"{len(changed_other)} edits also changed the sentence their kind keeps "
                         f"(kept as examples and pairs): {', '.join(changed_other)}")
    return out


_NLI = {name: i for i, name in enumerate(NLI_CLASSES)}


def _check_aligned(table, r: int, original, k: int, texts: tuple, edit: tuple) -> None:
    """An edit sharing neither sentence (even loosely) with its original means misaligned files."""
    if any(_norm(a) == _norm(b) for a, b in zip(texts, edit)):
        return
    words = [[w for w in tokens if w.isalnum()] for tokens in tokenize([*texts, *edit])]
    overlap = max(jaccard(words[i], words[i + 2]) for i in range(2))  # punctuation would inflate it
    if overlap < 0.2:
        raise UserError(f"{table.path}: line {table.line(r)} shares neither sentence with its original "
                        f"({original.path} line {original.line(k)}): the files look misaligned")


def _split_names(text):
    """'train,val' -> ['train', 'val'] (the command line's --splits)."""
    names = [s.strip() for s in text.split(",") if s.strip()] if isinstance(text, str) else text
    bad = [s for s in names or [] if s not in SPLIT_FILES]
    if bad:
        raise UserError(f"--splits: unknown split(s) {bad}; choose from {', '.join(SPLIT_FILES)}")
    return names


@dataclass(kw_only=True)
class CadOptions(TextOptions):
    cad_dir: Path = option(help="Root of the CAD release (holds sentiment/ and NLI/).", inputs="dir")
    splits: list | None = option(None, help="Comma-separated splits that must be built (default: those whose files "
                                            "exist).", parse=_split_names)
    allow_unverified_sources: bool = option(False, help="Build even when a file differs from data_manifests/cad.json "
                                                        "(recorded in sources).")


class CadBuilder(Builder):
    """A preset over `textpairs` for one task of the CAD release."""
    manifest = "cad"
    splits = ("train", "val", "test")
    pattern = ""
    classes: list = []

    def build(self, o, driver):

        present, missing = available_splits(o.cad_dir, self.pattern, _split_names(o.splits))
        if "train" not in present:
            expected = ", ".join(p.format(SPLIT_FILES["train"]) for p in self.pattern.split(","))
            raise UserError(f"--cad-dir {o.cad_dir}: no {self.name} training files; expected {expected} under it "
                            "(give the release's root folder, which holds sentiment/ and NLI/)")
        ledger = driver.ledger(o.cad_dir, o.allow_unverified_sources)
        paired = {name: self.read_split(ledger, name) for name in present}
        text = driver.text()
        write_text_store(driver, task=text.task, class_names=self.classes, splits=paired, max_tokens=text.max_tokens,
                         vocab_size=text.vocab_size, extra_report={"missing_splits": missing}, allow=text.allow)


@register
class Imdb(CadBuilder):
    """Whole reviews by default: trimmed to 32 tokens, 357 of the 1,703 training pairs become
    identical and val accuracy stays far below the paper's (docs/REPRODUCTION.md)."""
    name, Options = "imdb", CadOptions
    summary = "IMDb sentiment pairs from CAD's sentiment/combined/paired (pairs by batch_id)."
    example = "cfbuild imdb --cad-dir counterfactually-augmented-data --out imdb.h5"
    pattern, classes = "sentiment/combined/paired/{}_paired.tsv", SENTIMENT_CLASSES
    read_split = staticmethod(lambda ledger, name: imdb_split(ledger, name))


@register
class Snli(CadBuilder):
    """Row k of NLI/original is the original of rows 2k and 2k+1 of each revised file."""
    name, Options = "snli", CadOptions
    summary = "SNLI pairs from CAD's NLI/original and NLI/revised_{premise,hypothesis}."
    example = "cfbuild snli --cad-dir counterfactually-augmented-data --out snli.h5"
    pattern = "NLI/original/{0}.tsv,NLI/revised_premise/{0}.tsv,NLI/revised_hypothesis/{0}.tsv"
    classes = NLI_CLASSES
    read_split = staticmethod(lambda ledger, name: snli_split(ledger, name))


def build_imdb(cad_dir, out, force: bool = False, allow_unverified: bool = False, **options) -> dict:
    """The IMDb sentiment store (`CadOptions`); returns the build report."""
    return run_builder("imdb", out, force, cad_dir=Path(cad_dir), allow_unverified_sources=allow_unverified, **options)


def build_snli(cad_dir, out, force: bool = False, allow_unverified: bool = False, **options) -> dict:
    """The SNLI store (`CadOptions`): each original with its two premise and two hypothesis edits."""
    return run_builder("snli", out, force, cad_dir=Path(cad_dir), allow_unverified_sources=allow_unverified, **options)
