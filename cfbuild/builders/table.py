"""`cfbuild table`: a user's own counterfactual data (CSV/TSV/JSONL/parquet) as a text store;
`cfbuild import`: the same over tables in `cfbuild export`'s layout."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cfbuild.builders.textpairs import PairedSplit, write_text_store
from cfbuild.labels import check_label_column
from cfbuild.provenance import card_terms
from cfbuild.protocol import Builder, SplitFiles, TextOptions, option, reference_of, register, run_builder
from cfbuild.sources.tables import Table, read_table
from cfpairs.errors import UserError
from cfpairs.store import describe_source

TRUE_WORDS = {"1", "true", "yes", "y", "original"}


def label_classes(values) -> list[str]:
    """Class names in a stable order: numerically when every label is an integer."""
    unique = sorted(set(values))
    if all(v.lstrip("-").isdigit() for v in unique):
        unique.sort(key=int)
    return unique


@dataclass(frozen=True)
class Layout:
    """Which columns say what. `counterfactual_col` marks the edits (the group's one unmarked row is
    its original) instead of `original_col` marking the original; rows whose pair value is in
    `unpaired` stand alone; `label_names` turns label indexes into class names (an export's
    ClassLabel); `id_col` and `kind_col` keep ids and pair kinds instead of file:line and 'edited'."""
    text_cols: tuple
    label_col: str
    pair_col: str
    original_col: str | None = None
    counterfactual_col: str | None = None
    unpaired: tuple = ()
    label_names: tuple | None = None
    id_col: str | None = None
    kind_col: str | None = None


def _is_marked(table: Table, column: str | None, row: int) -> bool:
    return bool(column) and table.columns[column][row].strip().lower() in TRUE_WORDS


def _group_rows(table: Table, layout: Layout) -> list[tuple[int, list[int], bool]]:
    """(first row, its edits, whether the first row is a counterfactual) per group. A row whose pair
    value is in `layout.unpaired` stands alone, counterfactual or not (an edit whose pair was left
    out, e.g. identical to its original)."""
    pair_col, original_col = layout.pair_col, layout.original_col
    groups: dict[str, list[int]] = {}
    out = []
    for row, key in enumerate(table.columns[pair_col]):
        if not key:
            raise UserError(f"{table.path}: line {table.line(row)}: empty {pair_col!r}")
        if key in layout.unpaired:
            out.append((row, [], _is_marked(table, layout.counterfactual_col, row)))
        else:
            groups.setdefault(key, []).append(row)
    for key, rows in groups.items():
        original = rows[0]
        if layout.counterfactual_col:
            marks = table.columns[layout.counterfactual_col]
            unmarked = [r for r in rows if marks[r].strip().lower() not in TRUE_WORDS]
            if len(unmarked) != 1:
                lines = ", ".join(str(table.line(r)) for r in rows)
                raise UserError(f"{table.path}: {pair_col} {key!r} (lines {lines}) has {len(unmarked)} rows not "
                                f"marked counterfactual in {layout.counterfactual_col!r}; exactly 1 is needed")
            original = unmarked[0]
        elif original_col:
            flagged = [r for r in rows if table.columns[original_col][r].strip().lower() in TRUE_WORDS]
            if len(flagged) != 1:
                lines = ", ".join(str(table.line(r)) for r in rows)
                raise UserError(f"{table.path}: {pair_col} {key!r} (lines {lines}) has {len(flagged)} rows "
                                f"marked original in {original_col!r}; exactly 1 is needed")
            original = flagged[0]
        out.append((original, [r for r in rows if r != original], False))
    return out


def _named_labels(table: Table, label_col: str, names: tuple) -> None:
    """Label indexes (0..C-1) as class names, in place."""
    column = table.columns[label_col]
    for row, value in enumerate(column):
        if not value.strip().isdigit() or int(value) >= len(names):
            raise UserError(f"{table.path}: line {table.line(row)}: label {value!r} is not a class index "
                            f"0..{len(names) - 1}")
        column[row] = names[int(value)]


def table_split(path, layout: Layout, classes: list | None, allow=()) -> tuple[PairedSplit, list]:
    """One file as a PairedSplit; `classes` None means: take them from this file's labels (checked:
    `cfbuild.labels`; `allow` what the user accepts)."""
    text_cols, label_col, pair_col = list(layout.text_cols), layout.label_col, layout.pair_col
    table = read_table(path)
    optional = [c for c in (layout.original_col, layout.counterfactual_col, layout.id_col, layout.kind_col) if c]
    table.require(*text_cols, label_col, pair_col, *optional)
    if not len(table):
        raise UserError(f"{table.path}: no data rows")
    check_label_column(table.columns[label_col], lambda row: (table.path, f"line {table.line(row)}"), label_col,
                       allow if classes is None else (*allow, "many-classes"))  # classes come from train
    if layout.label_names:
        _named_labels(table, label_col, layout.label_names)
    classes = classes or (list(layout.label_names) if layout.label_names else label_classes(table.columns[label_col]))
    index = {c: i for i, c in enumerate(classes)}
    out = PairedSplit()
    unpaired = 0

    def add(row: int, is_cf: bool) -> int:
        value = table.columns[label_col][row]
        if value not in index:
            raise UserError(f"{table.path}: line {table.line(row)}: unknown label {value!r} (classes: {classes})")
        row_id = table.columns[layout.id_col][row] if layout.id_col else f"{Path(path).name}:{table.line(row)}"
        return out.add(row_id, [table.columns[c][row] for c in text_cols],
                       index[value], is_cf, pair_id=table.columns[pair_col][row], source_line=table.line(row))

    groups = _group_rows(table, layout)
    original_of, is_cf = {}, {}
    for original, edits, lone_edit in groups:
        is_cf[original] = lone_edit
        unpaired += not edits and not lone_edit
        for row in edits:
            original_of[row], is_cf[row] = original, True
    made = {row: add(row, is_cf[row]) for row in range(len(table))}  # rows in file order
    for row, original in sorted(original_of.items()):
        kind = table.columns[layout.kind_col][row] if layout.kind_col else "edited"
        out.pairs.append((made[original], made[row], kind, f"{pair_col} {table.columns[pair_col][original]}"))
    if unpaired:
        out.notes.append(f"{unpaired} groups have no edit (kept as unpaired originals)")
    return out, classes


def listed_pairs(path: Path, split) -> list:
    """A split's pairs from its exported pairs table (original_id, counterfactual_id, kind, and
    relation: flip when absent), each id one of the split's rows (else refused, naming the row)."""
    table = read_table(path)
    table.require("original_id", "counterfactual_id", "kind")
    row_of = {str(i): n for n, i in enumerate(split.ids)}
    relations = table.columns.get("relation") or ["flip"] * len(table)
    pairs, seen = [], {}
    for n, (a, b, kind, relation) in enumerate(zip(table.columns["original_id"], table.columns["counterfactual_id"],
                                                   table.columns["kind"], relations)):
        missing = next((i for i in (a, b) if str(i) not in row_of), None)
        if missing is not None:
            raise UserError(f"{path}: row {n + 1}: id {str(missing)[:60]!r} is no row of the split's table")
        if relation not in ("flip", "keep"):
            raise UserError(f"{path}: row {n + 1}: relation {str(relation)[:20]!r}, expected flip or keep")
        rows = (row_of[str(a)], row_of[str(b)])
        if rows[0] == rows[1] or rows in seen:
            raise UserError(f"{path}: row {n + 1}: pair {str(a)[:40]!r} -> {str(b)[:40]!r} "
                            + ("joins a row with itself" if rows[0] == rows[1] else f"repeats row {seen[rows]}"))
        seen[rows] = n + 1
        pairs.append((*rows, str(kind), f"pair {a}", relation))
    return pairs


def write_table_store(driver, files: dict, layout: Layout, text, pair_files: dict | None = None) -> dict:
    """`files`: {split name: path}, `train` required (its labels define the classes); `text`: the
    build's settings (`Driver.text`); `pair_files` {split: a pairs table `cfbuild export` wrote}:
    that split's pairs as listed there (keep pairs, pairs between edited rows), not rebuilt from groups."""
    if "train" not in files:
        raise UserError("--file (the train split) is required")
    split, classes = table_split(files["train"], layout, classes=None, allow=text.allow)
    if len(classes) < 2:
        raise UserError(f"{files['train']}: column {layout.label_col!r} has fewer than 2 classes ({classes})")
    splits = {"train": split}
    for name in ("val", "test"):
        if files.get(name):
            splits[name], _ = table_split(files[name], layout, classes=classes, allow=text.allow)
    for name, path in (pair_files or {}).items():
        if name in splits:
            splits[name].pairs = listed_pairs(path, splits[name])
    driver.sources.extend(describe_source(files[n]) for n in splits)
    return write_text_store(driver, task=text.task, class_names=classes, splits=splits, max_tokens=text.max_tokens,
                            vocab_size=text.vocab_size, allow=text.allow)


@dataclass(kw_only=True)
class TableOptions(SplitFiles, TextOptions):
    text_col: str = option(help="The text column (the premise for text pairs).")
    label_col: str = option(help="The label column.")
    pair_col: str = option(help="Rows sharing this value form a group: an original and its edits.")
    text2_col: str | None = option(None, help="A second text column (the hypothesis): makes a text_pair store.")
    original_col: str | None = option(None, help="A column marking the original of each group (1/true/yes/original); "
                                                 "default: the group's first row.")


@register
class TableBuilder(Builder):
    name, Options = "table", TableOptions
    summary = "A text store from your own counterfactual table (CSV/TSV/JSONL/parquet, rows grouped by --pair-col)."
    example = "cfbuild table --file pairs.csv --text-col text --label-col label --pair-col pair_id --out mine.h5"
    splits = ("train", "val", "test")

    def build(self, o, driver):
        layout = Layout(tuple(c for c in (o.text_col, o.text2_col) if c), o.label_col, o.pair_col, o.original_col)
        write_table_store(driver, o.split_files(), layout, driver.text())


def build_table(files: dict, out, *, text_cols: list, label_col: str, pair_col: str, original_col=None,
                task: str | None = None, max_tokens: int | None = None, vocab_size: int | None = None,
                force: bool = False, allow=(), license: str | None = None, citation: str | None = None) -> dict:
    """The `table` builder from Python: `files` {split name: path}, `train` required."""
    return run_builder("table", out, force, file=files.get("train"), file_val=files.get("val"),
                       file_test=files.get("test"), text_col=text_cols[0],
                       text2_col=text_cols[1] if len(text_cols) > 1 else None, label_col=label_col,
                       pair_col=pair_col, original_col=original_col, task=task, max_tokens=max_tokens,
                       vocab_size=vocab_size, allow=list(allow), license=license, citation=citation)


def _store_json(folder: Path) -> dict:
    path = folder / "store.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: expected a JSON object (the attributes cfbuild export writes)")
    return meta


def _class_names(folder: Path, meta: dict) -> tuple | None:
    """store.json's class names: a list of distinct, non-empty strings (or absent)."""
    names = meta.get("class_names")
    if names is None:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise UserError(f"{folder / 'store.json'}: class_names must be a list of class names, e.g. [\"neg\", \"pos\"], "
                        f"found {json.dumps(names)[:60]}")
    if len(set(names)) != len(names):
        raise UserError(f"{folder / 'store.json'}: class_names repeats a name: {json.dumps(names)[:60]}")
    return tuple(names)


@dataclass(kw_only=True)
class ImportOptions(TextOptions):
    folder: Path = option(help="Holds train.parquet (or .jsonl/.csv/.tsv), optionally val and test, in the export "
                               "layout.", inputs="dir", argument=True)
    license: str | None = option(None, help="The licence of the folder's data [default: what its README.md card "
                                            "states, else unknown].")
    citation: str | None = option(None, help="How to cite the folder's data [default: its card's citations, else "
                                             "unknown].")


@register
class ImportBuilder(Builder):
    """Columns text (or premise_text and hypothesis_text), label, pair_id (-1: unpaired), is_counterfactual,
    and optionally id and pair_kind; store.json, when there, gives the class names (labels are then
    class indexes), the task, and the defaults of --max-tokens and --vocab-size (a round trip gives
    back the same tokens)."""
    name, Options = "import", ImportOptions
    summary = "A text store from tables in the layout `cfbuild export` writes (your own paired data too)."
    example = "cfbuild export imdb.h5 --to parquet imdb-parquet && cfbuild import imdb-parquet --out imdb-again.h5"
    splits = ("train", "val", "test")

    def build(self, o, driver):
        folder = Path(o.folder)
        files = {}
        for split in ("train", "val", "test"):
            found = [p for p in (folder / f"{split}{ext}" for ext in (".parquet", ".jsonl", ".csv", ".tsv"))
                     if p.is_file()] + [p for p in [folder / split] if (p / "state.json").is_file()]  # --to hf
            if found:
                files[split] = found[0]
        if "train" not in files:
            raise UserError(f"{folder}: no train.parquet (or train.jsonl/.csv/.tsv, or a train/ folder that "
                            "cfbuild export --to hf writes) in the exported layout")
        meta = _store_json(folder)
        stated = card_terms(folder)  # an exported folder's card: its licence and citations
        driver.terms = (o.license or stated[0], o.citation or stated[1])
        if meta.get("input_kind") not in (None, "text", "text_pair"):
            raise UserError(f"{folder}: a {meta['input_kind']} store cannot be imported (texts only)")
        header = read_table(files["train"]).columns
        text_cols = ("premise_text", "hypothesis_text") if "premise_text" in header else ("text",)
        layout = Layout(text_cols, "label", "pair_id", counterfactual_col="is_counterfactual", unpaired=("-1",),
                        label_names=_class_names(folder, meta), id_col="id" if "id" in header else None,
                        kind_col="pair_kind" if "pair_kind" in header else None)
        pair_files = {s: p for s in files for p in [folder / "pairs" / f"{s}.parquet", folder / "pairs" / s]
                      if p.is_file() or (p / "state.json").is_file()}  # export's pairs tables (parquet, hf)
        write_table_store(driver, files, layout, driver.text(reference_of(meta.get("build"), meta.get("task"))),
                          pair_files)


def build_import(folder, out, *, max_tokens: int | None = None, vocab_size: int | None = None,
                 force: bool = False) -> dict:
    """The `import` builder from Python."""
    return run_builder("import", out, force, folder=Path(folder), max_tokens=max_tokens, vocab_size=vocab_size)
