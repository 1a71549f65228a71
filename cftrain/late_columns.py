"""Columns registered after a run was trained, computed from its kept predictions when its record
is read (`cftrain.jobs.read_record`): `cftrain collect` (and a table, sweep or curve grown later)
shows them for old runs without retraining. A run from before predictions were kept is named,
with the command that keeps them (`cftrain eval RUN STORE --keep`)."""

from __future__ import annotations

from pathlib import Path

from cfpairs.progress import note
from cftrain.columns import applying, column_values
from cftrain.labels import training_labels


def complete_columns(run, config: dict, metrics: dict) -> list:
    """`metrics["columns"]` completed in memory with every applying column it lacks (the run folder is
    never written); returns the names still missing because the run kept no predictions. The label
    kind is the store's in `config` (a reference fit has none: its predictions file's)."""
    label_kind = config.get("store_signature", {}).get("label_kind")
    have = metrics.get("columns", {})
    missing = [c.name for c in applying(label_kind) if c.name not in have] if label_kind else None
    if missing == []:
        return []
    kept = run.read_scores()
    if kept is None:
        return missing or []
    if not kept:
        return missing or []
    label_kind = label_kind or next(iter(kept.values())).label_kind
    missing = missing or [c.name for c in applying(label_kind) if c.name not in have]
    labels = training_labels(label_kind, config.get("loss"))
    metrics["columns"] = {**have, **column_values(kept, labels, only=missing)}
    return []


def say_missing(records: list, root: Path) -> None:
    """One line naming the runs that kept no predictions, so show '-' in a column, and the fix."""
    lacking = [r for r in records if r.get("columns_missing")]
    if not lacking:
        return
    names = sorted({n for r in lacking for n in r["columns_missing"]})
    first = Path(root) / lacking[0]["folder"]
    store = lacking[0]["config"].get("store") or "STORE"
    more = f" (and {len(lacking) - 1} more)" if len(lacking) > 1 else ""
    note(f"{first}{more}: trained before runs kept their predictions, so column {', '.join(names)} shows '-'; "
         f"keep them with: cftrain eval {first} {store} --keep")
