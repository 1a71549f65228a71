"""Label columns checked before a build starts: what is plainly a mistake is refused by name (the
rows, the column, what to do), and what a user could really mean passes with `--allow WHAT`.

- empty or NaN labels: never a class;
- spellings a reader takes for one label (`pos`, `Pos`, `pos `; Unicode compatibility forms,
  NFKC; invisible format characters such as bidi controls and zero-width joiners; letters of
  another script that look like Latin ones, Cyrillic `о` in `pоs`; numbers spelled differently,
  `1` and `1.0`): one class written several ways, which would silently turn a binary task
  multiclass (`--allow label-spellings` keeps them apart);
- about one class per row: a text column read as labels ("columns swapped?";
  `--allow many-classes`);
- a build that ends with no pair (`--allow no-pairs`), and a preset's class that no row has
  (`--allow missing-class`): checked where the builds make them.
"""

from __future__ import annotations

import math
import unicodedata
from collections import defaultdict

from cfpairs.errors import UserError

ALLOW = ("label-spellings", "many-classes", "no-pairs", "missing-class")
ALLOW_HELP = ("Accept what is usually a mistake, repeatable: label-spellings (labels a reader takes for one, "
              "differing by case, spaces, invisible characters, look-alike letters or number spelling, stay "
              "different classes), many-classes (about one class per row), no-pairs (a "
              "store without pairs), missing-class (a preset's class no row has).")
MISSING = ("", "nan")
MANY_CLASSES = 20  # more distinct labels than this and than half the rows: a text column?


def check_label_column(values: list, where, column: str, allow=()) -> None:
    """`values`: the column's labels (strings); `where(row)`: (file, place) naming a row, e.g.
    ("pairs.csv", "line 7")."""
    missing = [row for row, value in enumerate(values) if value.strip().lower() in MISSING]
    if missing:
        file, place = where(missing[0])
        raise UserError(f"{file}: {place}: {'empty' if not values[missing[0]].strip() else 'NaN'} label in column "
                        f"{column!r} ({len(missing)} such row{'s' if len(missing) > 1 else ''}); every row needs "
                        "its class")
    if "label-spellings" not in allow:
        _check_spellings(values, where, column)
    classes = len(set(values))
    if "many-classes" not in allow and classes > MANY_CLASSES and classes > len(values) / 2:
        raise UserError(f"{where(0)[0]}: column {column!r} has {classes} classes for {len(values)} rows (about one "
                        "per row): is it the label column (columns swapped?); pass --allow many-classes if you "
                        "mean it")


# letters of Cyrillic and Greek drawn like Latin ones (Unicode's confusables, the common part)
LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X"})


def reading(label: str) -> str:
    """What a reader takes a label for: its NFKC form without invisible format characters (category
    Cf: bidi controls, zero-width joiners), look-alike letters as Latin ones, case and surrounding
    spaces folded, and a number as its value (`1`, `1.0`, `01` read alike)."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", label) if unicodedata.category(ch) != "Cf")
    text = text.translate(LOOKALIKES).strip().casefold()
    try:
        number = float(text)
    except ValueError:
        return text
    return f"number {number!r}" if math.isfinite(number) else text


def _check_spellings(values: list, where, column: str) -> None:
    first_row = {}
    for row, value in enumerate(values):
        first_row.setdefault(value, row)
    spellings = defaultdict(list)
    for value in first_row:
        spellings[reading(value)].append(value)
    clash = next((found for found in spellings.values() if len(found) > 1), None)
    if clash:
        shown = " and ".join(f"{v!r} ({where(first_row[v])[1]})" for v in clash[:3])
        simple = len({v.strip().casefold() for v in clash}) == 1
        what = "differ only by case or surrounding spaces" if simple else \
            f"read as one label ({', '.join(ascii(v) for v in clash[:3])}: Unicode forms, invisible characters, " \
            "look-alike letters or the spelling of a number)"
        raise UserError(f"{where(first_row[clash[0]])[0]}: column {column!r}: labels {shown} {what}; clean the "
                        "column, or pass --allow label-spellings to keep them as different classes")


def check_some_pair(pairs_per_split: dict, allow=(), why: str = "") -> None:
    """A pair store with no pair at all is refused (`--allow no-pairs` builds it)."""
    if "no-pairs" in allow or any(pairs_per_split.values()):
        return
    splits = ", ".join(f"{name} 0" for name in pairs_per_split)
    raise UserError(f"the build made no pair ({splits}){': ' + why if why else ''}; a pair store needs an original "
                    "and an edit with different labels and texts: check the label and text columns, or pass "
                    "--allow no-pairs")
