"""`cfbuild aligned`: human-edited data in the two shapes most releases use besides CAD's.

- Two aligned tables: row k of `--edited-file` is the edit of row k of `--file`, both with a text and
  a label column (Gardner et al.'s contrast sets: `Sentiment<TAB>Text` in `test_original.tsv` and
  `test_contrast.tsv`).
- One table with an original and an edited column (`--original-col`, `--edited-col`), labels in
  columns (`--original-label-col`, `--edited-label-col`) or constants (`--original-label`,
  `--edited-label`); `--no-header --names a,b` for a file without a header (Li et al.'s sentiment
  rewrites: `reference.0` holds `original<TAB>rewrite` per line, negative then positive).

Rows become examples of one split (`--split`, default test) with ids `FILE:LINE` (one table:
`FILE:LINE:COLUMN`); row k's original
and edit are a pair. Checked like every builder: tables of different lengths are an error naming
both; an empty text drops its pair (both rows), an edit identical to its original or with the same
label keeps both rows without a pair; each drop is counted and its first lines named in the report.
`--vocab-from` tokenises with a trained store's vocabulary and classes, so the split evaluates a
model trained on that store (`cftrain eval`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfbuild.builders.table import label_classes
from cfbuild.builders.textpairs import PairedSplit, write_text_store
from cfbuild.labels import check_label_column
from cfbuild.protocol import Builder, Provenance, TextOptions, option, reference_of, register, run_builder
from cfbuild.sources.tables import read_headerless, read_table
from cfpairs.errors import UserError
from cfpairs.store import Store, describe_source


def _names(text):
    return [n.strip() for n in text.split(",") if n.strip()] if isinstance(text, str) else text


@dataclass(kw_only=True)
class AlignedOptions(TextOptions, Provenance):
    file: Path = option(help="The originals (two aligned tables), or the one table with both columns.", inputs="file")
    edited_file: Path | None = option(None, help="Two aligned tables: row k of this file edits row k of --file.",
                                      inputs="file")
    text_col: str = option("Text", help="Two tables: the text column of both.")
    label_col: str = option("Sentiment", help="Two tables: the label column of both.")
    original_col: str | None = option(None, help="One table: the originals' column.")
    edited_col: str | None = option(None, help="One table: the edits' column.")
    original_label_col: str | None = option(None, help="One table: the originals' label column.")
    edited_label_col: str | None = option(None, help="One table: the edits' label column.")
    original_label: str | None = option(None, help="One table: every original's label (instead of a column).")
    edited_label: str | None = option(None, help="One table: every edit's label (instead of a column).")
    no_header: bool = option(False, help="The file has no header row: name its columns with --names.")
    names: list | None = option(None, help="Comma-separated names of a headerless file's columns.", parse=_names)
    split: str = option("test", help="The split the rows go to.")
    kind: str = option("edited", help="The pairs' kind.")
    vocab_from: Path | None = option(None, help="A trained store whose vocabulary, classes and max tokens to use.",
                                     inputs="file")


@register
class Aligned(Builder):
    name, Options = "aligned", AlignedOptions
    summary = "Human-edited pairs from two aligned tables, or one table with an original and an edited column."
    example = ("cfbuild aligned --file test_original.tsv --edited-file test_contrast.tsv --vocab-from imdb.h5 "
               "--out imdb-contrast.h5")
    splits = ("test",)

    def check(self, o):
        super().check(o)
        two = o.edited_file is not None
        one = [f for f in ("original_col", "edited_col") if getattr(o, f)]
        if two and one:
            raise UserError("--edited-file (two tables) or --original-col/--edited-col (one table), not both")
        if not two and len(one) != 2:
            raise UserError("give --edited-file (two aligned tables) or both --original-col and --edited-col")
        for side in ("original", "edited"):
            if not two and (getattr(o, f"{side}_label_col") is None) == (getattr(o, f"{side}_label") is None):
                raise UserError(f"one table: give exactly one of --{side}-label-col and --{side}-label")
        if o.no_header and not o.names:
            raise UserError("--no-header needs --names (the columns' names, in order)")

    def build(self, o, driver):
        rows = self.read_rows(o)
        classes, vocab, reference = self.classes_and_vocab(o, rows)
        text = driver.text(reference)
        split = to_split(rows, classes, o.kind, driver.report)
        driver.sources.extend(describe_source(p) for p in (o.file, o.edited_file) if p)
        write_text_store(driver, task=text.task, class_names=classes, splits={o.split: split},
                         max_tokens=text.max_tokens, vocab_size=len(vocab) if vocab else text.vocab_size, vocab=vocab,
                         vocab_split=o.split, allow=text.allow)

    def read_rows(self, o) -> list:
        """(original (text, label, id), edit (text, label, id)) per aligned row."""
        if o.edited_file is not None:
            first, second = _table(o.file, o), _table(o.edited_file, o)
            for table in (first, second):
                table.require(o.text_col, o.label_col)
            if len(first) != len(second):
                raise UserError(f"{o.file} has {len(first)} rows and {o.edited_file} {len(second)}: row k of "
                                "--edited-file must edit row k of --file")
            return [(_row(first, k, o.text_col, o.label_col), _row(second, k, o.text_col, o.label_col))
                    for k in range(len(first))]
        table = _table(o.file, o)
        table.require(*[c for c in (o.original_col, o.edited_col, o.original_label_col, o.edited_label_col) if c])
        return [(_row(table, k, o.original_col, o.original_label_col, o.original_label, o.original_col),
                 _row(table, k, o.edited_col, o.edited_label_col, o.edited_label, o.edited_col))
                for k in range(len(table))]

    @staticmethod
    def classes_and_vocab(o, rows) -> tuple:
        sides = [r for pair in rows for r in pair]
        labels = [r[1] for r in sides]
        allow = o.allow if o.vocab_from is None else (*o.allow, "label-spellings", "many-classes")  # its classes
        check_label_column(labels, lambda row: (sides[row][2].split(":")[0], f"line {sides[row][2].split(':')[1]}"),
                           "label", allow)
        if o.vocab_from is None:
            return label_classes(labels), None, {}
        with Store(o.vocab_from) as trained:
            if trained.input_kind != "text" or trained.vocab is None:
                raise UserError(f"--vocab-from {o.vocab_from}: a {trained.input_kind} store; aligned pairs are texts")
            reference = reference_of(trained.build, trained.task)
            return trained.class_names, trained.vocab, reference


def _table(path: Path, o):
    return read_headerless(path, o.names) if o.no_header else read_table(path)


def _row(table, k: int, text_col: str, label_col: str | None, label: str | None = None, role: str = "") -> tuple:
    """(text, label, id): ids are FILE:LINE, and FILE:LINE:COLUMN when both sides share a line."""
    value = table.columns[label_col][k] if label_col else label
    return table.columns[text_col][k], value, f"{table.path.name}:{table.line(k)}" + (f":{role}" if role else "")


def _class_of(label: str, classes: list, where: str) -> int:
    """A label's class: its name (case aside) or an index."""
    lowered = [c.lower() for c in classes]
    if label.strip().lower() in lowered:
        return lowered.index(label.strip().lower())
    if label.strip().isdigit() and int(label) < len(classes):
        return int(label)
    raise UserError(f"{where}: label {label!r} is not one of the classes {classes}")


def to_split(rows: list, classes: list, kind: str, report: dict) -> PairedSplit:
    """Rows and pairs; drops counted into the report (empty texts: the pair and its rows; the same
    label on both sides: the rows kept, unpaired)."""
    split = PairedSplit()
    empty, same_label = [], []
    for original, edit in rows:
        if not original[0].strip() or not edit[0].strip():
            empty.append(original[2] if not original[0].strip() else edit[2])
            continue
        a, b = (split.add(r[2], (r[0],), _class_of(r[1], classes, r[2]), cf) for r, cf in ((original, False),
                                                                                              (edit, True)))
        if split.labels[a] == split.labels[b]:
            same_label.append(edit[2])
            continue
        split.pairs.append((a, b, kind, f"line {edit[2]}"))
    report.update(rows_in_source=len(rows), dropped_empty_text=len(empty), dropped_empty_text_first=empty[:10],
                  unpaired_same_label=len(same_label), unpaired_same_label_first=same_label[:10])
    if same_label:
        split.notes.append(f"{len(same_label)} of {len(rows)} edits have the same label as their original "
                           f"(first: {same_label[0]})")
    return split


def build_aligned(out, force: bool = False, **options) -> dict:
    """The `aligned` builder from Python (`AlignedOptions`)."""
    return run_builder("aligned", out, force, **options)

