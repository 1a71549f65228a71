"""Table columns beyond the metric and pair consistency, one class each behind a registry.

A column is computed for one split from the run's kept predictions (`cftrain.scores.SplitScores`:
each member's logits, the targets, pairs and subsets) for the label kinds it declares, and stored
in metrics.json under `columns` ({column: {split: {"value", "n"}}}). Because a run keeps its
predictions, a column registered after a campaign was trained is computed by `cftrain collect`
for its old runs without retraining. Table, sweep, curve, report, collect and the viewer show
every registered column. Every module of this package is imported with it: a new column is one
new file (`docs/EXTENDING.md`).
"""

from __future__ import annotations

import math

from cfpairs.errors import UserError
from cfpairs.registering import discover, ordered_register

COLUMNS: dict[str, type] = {}
register = ordered_register(COLUMNS)


class Column:
    """One number per split, computed from its kept predictions."""
    name = ""               # its key in metrics.json and table.json (a table header's word)
    header = ""             # the table's header after the split's name, e.g. "ECE"
    label_kinds: tuple = ()  # the label kinds it is computed for (binary, multiclass, multilabel, soft)
    low, high = 0.0, 100.0  # its values' range (runschema refuses others)
    digits = 2
    better = "lower"        # "lower" or "higher": said in the table's caption
    what = ""               # one line for the caption and docs/TRAINING.md
    order = 50.0

    @classmethod
    def applies(cls, label_kind: str) -> bool:
        return label_kind in cls.label_kinds

    @classmethod
    def compute(cls, scores, labels) -> dict | None:
        """{"value": number or None, "n": rows or pairs counted} of one split (`SplitScores`;
        `labels`: the store's `cftrain.labels.Labels`); None where the column has no meaning there
        (e.g. a split without pairs)."""
        raise NotImplementedError


def column(name: str) -> type:
    if name not in COLUMNS:
        raise UserError(f"unknown column {name!r} (choose from {', '.join(COLUMNS)})")
    return COLUMNS[name]


def applying(label_kind: str) -> list:
    """The registered columns computed for this label kind, in their order."""
    return [c for c in COLUMNS.values() if c.applies(label_kind)]


def column_values(kept: dict, labels, only: list | None = None) -> dict:
    """{column: {split: {"value", "n"}}} of every applying column (or `only` those) over the kept
    predictions ({split: SplitScores}); a value rounded to the column's digits, null when undefined."""
    out = {}
    for found in applying(labels.name):
        if only is not None and found.name not in only:
            continue
        cells = {}
        for split, scores in kept.items():
            cell = found.compute(scores, labels)
            if cell is None:
                continue
            value = cell.get("value")
            cells[split] = {"value": None if value is None or not math.isfinite(value) else
                            round(float(value), found.digits), "n": int(cell.get("n", len(scores)))}
        out[found.name] = cells
    return out


discover(__name__, __path__)

__all__ = ["COLUMNS", "Column", "applying", "column", "column_values", "register"]
