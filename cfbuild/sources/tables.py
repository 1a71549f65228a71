"""Delimited, JSON-lines and parquet tables (CAD's TSVs, users' CSV/TSV/JSONL/parquet), read with
Python's csv and json modules and pyarrow (hub datasets and other formats: `load_with_datasets`).

Every cell comes back as a string. Problems are UserErrors that name the file
and, where there is one, the line.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from cfpairs.errors import UserError

DELIMITERS = {".tsv": "\t", ".csv": ","}
JSON_SUFFIXES = (".jsonl", ".json")


@dataclass
class Table:
    """Columns of strings; `line(row)` is the 1-based line where a data row starts in the file (a
    quoted CSV cell may hold line breaks, so rows and lines need not advance together)."""
    path: Path
    columns: dict[str, list[str]]
    first_line: int
    lines: list | None = None  # each row's first line, where rows span lines

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def line(self, row: int) -> int:
        return self.lines[row] if self.lines is not None else self.first_line + row

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise UserError(f"{self.path}: missing column(s) {', '.join(map(repr, missing))} "
                            f"(has {', '.join(map(repr, self.columns))})")


def check_utf8(path: Path) -> bytes:
    """The file's bytes (a UTF-8 byte-order mark dropped); a non-UTF-8 byte is an error naming its line."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # spreadsheets write one
        data = data[3:]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line}: not UTF-8 (byte 0x{data[exc.start]:02x})") from None
    if not data.strip():
        raise UserError(f"{path}: empty file")
    return data


def read_headerless(path, names: list) -> Table:
    """A .tsv/.csv without a header row (any other suffix: tab-separated), its columns named `names`."""
    path = Path(path)
    delimiter = DELIMITERS.get(path.suffix.lower(), "\t")
    header, rows, starts = parse_delimited(path, check_utf8(path).decode("utf-8"), delimiter, names)
    return _without_nul(Table(path, {name: [row[i] for row in rows] for i, name in enumerate(header)}, first_line=1,
                              lines=starts))


def read_table(path) -> Table:
    """Read a .tsv/.csv (with a header row) or .jsonl/.json (one object a line)."""
    path = Path(path)
    if path.is_dir() and (path / "state.json").is_file():
        return _without_nul(_read_saved(path))  # a split `datasets` saved (cfbuild export --to hf): rows
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        return _without_nul(_read_parquet(path))  # rows, not lines: "line" n is row n
    data = check_utf8(path)
    suffix = path.suffix.lower()
    if suffix in DELIMITERS:
        return _without_nul(_read_delimited(path, data, DELIMITERS[suffix]))
    if suffix in JSON_SUFFIXES:
        return _without_nul(_read_jsonl(path, data))
    raise UserError(f"{path}: unknown table format {suffix!r} (expected .tsv, .csv, .jsonl, .json or .parquet)")


def _without_nul(table: Table) -> Table:
    """A NUL character in a cell is refused by line and column (HDF5 strings cannot hold one)."""
    for name, values in table.columns.items():
        if any("\x00" in value for value in values):
            row = next(row for row, value in enumerate(values) if "\x00" in value)
            raise UserError(f"{table.path}: line {table.line(row)}: a NUL character in column {name!r} (a text "
                            "cannot hold one; remove it)")
    return table


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path).to_pydict()
    except Exception as exc:  # pyarrow raises many types for damaged files
        raise UserError(f"{path}: not a readable parquet file ({' '.join(str(exc).split())[:160]})") from None
    return _strings(path, table)


def _read_saved(path: Path) -> Table:
    """One split that `datasets` saved to disk (`save_to_disk`), as strings."""
    import datasets

    try:
        table = datasets.load_from_disk(str(path)).to_dict()
    except Exception as exc:  # datasets raises many types for damaged folders
        raise UserError(f"{path}: not a readable saved dataset ({' '.join(str(exc).split())[:160]})") from None
    return _strings(path, table)


def _strings(path: Path, table: dict) -> Table:
    columns = {name: ["" if v is None else (str(v).lower() if isinstance(v, bool) else str(v)) for v in values]
               for name, values in table.items()}
    return Table(path, columns, first_line=1)


def load_with_datasets(*args, what: str, **kwargs):
    """`datasets.load_dataset(*args, **kwargs)`; any failure is a UserError naming `what`."""
    import datasets

    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(*args, **kwargs)
    except Exception as exc:  # datasets wraps parser, hub and network errors in many types
        raise UserError(f"{what} ({' '.join(str(exc).split())[:200]})") from None


def parse_delimited(path: Path, text: str, delimiter: str, names: list | None = None) -> tuple[list, list, list]:
    """(header, rows, each row's first line) with Python's csv module, RFC 4180: a quoted cell may
    hold the delimiter, quotes doubled, and line breaks. A row with the wrong number of fields, a quote
    never closed, or any other syntax error names the line where its row starts. `names`: the
    columns of a file without a header (its first line is a row)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header, rows, starts, last_line = (list(names) if names else None), [], [], 0
    try:
        for fields in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if header is None:
                header = fields
            elif fields:
                if len(fields) != len(header):
                    raise UserError(f"{path}: line {first_line}: {len(fields)} fields, the header has {len(header)}")
                rows.append(fields)
                starts.append(first_line)
    except csv.Error as exc:
        hint = " (a quote opened there is never closed?)" if "end of data" in str(exc) else ""
        raise UserError(f"{path}: line {last_line + 1}: {exc}{hint}") from None
    return header or [], rows, starts


def _read_delimited(path: Path, data: bytes, delimiter: str) -> Table:
    header, rows, starts = parse_delimited(path, data.decode("utf-8"), delimiter)
    if len(set(header)) != len(header) or any(not h for h in header):
        raise UserError(f"{path}: line 1: header needs unique, non-empty column names (got {header})")
    columns = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    return Table(path, columns, first_line=2, lines=starts)


def _read_jsonl(path: Path, data: bytes) -> Table:
    objects, lines = [], []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():  # blank lines are skipped, and every row keeps its own line number
            try:
                value = json.loads(line)
            except ValueError as exc:
                raise UserError(f"{path}: line {number}: not a JSON object ({exc})") from None
            if not isinstance(value, dict):
                raise UserError(f"{path}: line {number}: not a JSON object ({type(value).__name__})")
            objects.append(value)
            lines.append(number)
    names = list(dict.fromkeys(k for obj in objects for k in obj))
    columns = {name: ["" if obj.get(name) is None else str(obj[name]) for obj in objects] for name in names}
    return Table(path, columns, first_line=1, lines=lines)
