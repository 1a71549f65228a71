"""`cfbuild table`: a user's own counterfactual data (CSV/TSV/JSONL) as a text store."""

from __future__ import annotations

from pathlib import Path

from cfbuild.builders.textpairs import PairedSplit, write_text_store
from cfbuild.errors import UserError
from cfbuild.sources.tables import Table, read_table
from cfbuild.store import describe_source
from cfbuild.staging import check_output_file

TRUE_WORDS = {"1", "true", "yes", "y", "original"}


def label_classes(values) -> list[str]:
    """Class names in a stable order: numerically when every label is an integer."""
    unique = sorted(set(values))
    if all(v.lstrip("-").isdigit() for v in unique):
        unique.sort(key=int)
    return unique


def _group_rows(table: Table, pair_col: str, original_col: str | None) -> list[tuple[int, list[int]]]:
    groups: dict[str, list[int]] = {}
    for row, key in enumerate(table.columns[pair_col]):
        if not key:
            raise UserError(f"{table.path}: line {table.line(row)}: empty {pair_col!r}")
        groups.setdefault(key, []).append(row)
    out = []
    for key, rows in groups.items():
        original = rows[0]
        if original_col:
            flagged = [r for r in rows if table.columns[original_col][r].strip().lower() in TRUE_WORDS]
            if len(flagged) != 1:
                lines = ", ".join(str(table.line(r)) for r in rows)
                raise UserError(f"{table.path}: {pair_col} {key!r} (lines {lines}) has {len(flagged)} rows "
                                f"marked original in {original_col!r}; exactly 1 is needed")
            original = flagged[0]
        out.append((original, [r for r in rows if r != original]))
    return out


def table_split(path, *, text_cols: list, label_col: str, pair_col: str, original_col: str | None,
                classes: list | None) -> tuple[PairedSplit, list]:
    """One file as a PairedSplit; `classes` None means: take them from this file's labels."""
    table = read_table(path)
    table.require(*text_cols, label_col, pair_col, *([original_col] if original_col else []))
    empty = [row for row, value in enumerate(table.columns[label_col]) if not value.strip()]
    if empty:
        raise UserError(f"{table.path}: line {table.line(empty[0])}: empty label in column {label_col!r} "
                        f"({len(empty)} such rows)")
    classes = classes or label_classes(table.columns[label_col])
    index = {c: i for i, c in enumerate(classes)}
    out = PairedSplit()
    unpaired = 0

    def add(row: int, is_cf: bool) -> int:
        value = table.columns[label_col][row]
        if value not in index:
            raise UserError(f"{table.path}: line {table.line(row)}: unknown label {value!r} (classes: {classes})")
        return out.add(f"{Path(path).name}:{table.line(row)}", [table.columns[c][row] for c in text_cols],
                       index[value], is_cf, pair_id=table.columns[pair_col][row], source_line=table.line(row))

    for original, edits in _group_rows(table, pair_col, original_col):
        o = add(original, False)
        unpaired += not edits
        for row in edits:
            out.pairs.append((o, add(row, True), "edited", f"{pair_col} {table.columns[pair_col][original]}"))
    if unpaired:
        out.notes.append(f"{unpaired} groups have no edit (kept as unpaired originals)")
    return out, classes


def build_table(files: dict, out, *, text_cols: list, label_col: str, pair_col: str, original_col=None,
                task: str = "table", max_tokens: int = 32, vocab_size: int = 20000, force: bool = False) -> dict:
    """`files`: {split name: path}, `train` required (its labels define the classes)."""
    check_output_file(out, force)  # before any work
    if "train" not in files:
        raise UserError("--file (the train split) is required")
    split, classes = table_split(files["train"], text_cols=text_cols, label_col=label_col, pair_col=pair_col,
                                 original_col=original_col, classes=None)
    if len(classes) < 2:
        raise UserError(f"{files['train']}: column {label_col!r} has fewer than 2 classes ({classes})")
    splits = {"train": split}
    for name in ("val", "test"):
        if files.get(name):
            splits[name], _ = table_split(files[name], text_cols=text_cols, label_col=label_col,
                                          pair_col=pair_col, original_col=original_col, classes=classes)
    params = {"text_cols": text_cols, "label_col": label_col, "pair_col": pair_col, "original_col": original_col,
              "max_tokens": max_tokens, "vocab_size": vocab_size, "files": {k: str(v) for k, v in files.items()}}
    return write_text_store(out, task=task, class_names=classes, splits=splits, max_tokens=max_tokens,
                            vocab_size=vocab_size, command="cfbuild table", parameters=params,
                            sources=[describe_source(files[n]) for n in splits], force=force)
