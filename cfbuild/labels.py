"""Label columns checked before a build starts: what is plainly a mistake is refused by name (the
rows, the column, what to do), and what a user could really mean passes with `--allow WHAT`.

- empty or NaN labels: never a class;
- spellings that differ only by case or surrounding white space (`pos`, `Pos`, `pos `): one
  class written several ways, which would silently turn a binary task multiclass
  (`--allow label-spellings` keeps them apart);
- about one class per row: a text column read as labels ("columns swapped?";
  `--allow many-classes`);
- a build that ends with no pair (`--allow no-pairs`), and a preset's class that no row has
  (`--allow missing-class`): checked where the builds make them.
"""

from __future__ import annotations

from collections import defaultdict

from cfpairs.errors import UserError

ALLOW = ("label-spellings", "many-classes", "no-pairs", "missing-class")
ALLOW_HELP = ("Accept what is usually a mistake, repeatable: label-spellings (labels differing only by case or "
              "surrounding spaces stay different classes), many-classes (about one class per row), no-pairs (a "
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


def _check_spellings(values: list, where, column: str) -> None:
    first_row = {}
    for row, value in enumerate(values):
        first_row.setdefault(value, row)
    spellings = defaultdict(list)
    for value in first_row:
        spellings[value.strip().casefold()].append(value)
    clash = next((found for found in spellings.values() if len(found) > 1), None)
    if clash:
        shown = " and ".join(f"{v!r} ({where(first_row[v])[1]})" for v in clash[:3])
        raise UserError(f"{where(first_row[clash[0]])[0]}: column {column!r}: labels {shown} differ only by case or "
                        "surrounding spaces; clean the column, or pass --allow label-spellings to keep them as "
                        "different classes")


def check_some_pair(pairs_per_split: dict, allow=(), why: str = "") -> None:
    """A pair store with no pair at all is refused (`--allow no-pairs` builds it)."""
    if "no-pairs" in allow or any(pairs_per_split.values()):
        return
    splits = ", ".join(f"{name} 0" for name in pairs_per_split)
    raise UserError(f"the build made no pair ({splits}){': ' + why if why else ''}; a pair store needs an original "
                    "and an edit with different labels and texts: check the label and text columns, or pass "
                    "--allow no-pairs")
