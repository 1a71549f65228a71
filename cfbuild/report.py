"""The one printer of build reports (every builder returns a plain JSON-able report dict,
stored in the store's `report` attribute): notices for skipped splits, the build's own
figures, one line per split, then each split's anomalies indented under it."""

from __future__ import annotations

from cfpairs.check import short_list

# Wording for report keys whose name alone says too little; others print with spaces for '_'.
LABELS = {
    "pairs_dropped_identical": "left out of pairs, identical texts",
    "pairs_dropped_same_tokens": "left out of pairs, texts differing only in case, spacing or markup",
    "low_overlap_pairs": "low token overlap (Jaccard below 0.2)",
    "pairs_same_after_truncation": "pairs with the same first --max-tokens tokens",
    "unchanged_label_edits": "edits leaving the label unchanged (kept, not paired)",
    "unchanged_first": "e.g.",
    "attention_unused": "attention given for questions in no split",
    "empty_texts_first": "rows with an empty text (kept)",
}


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def _empty(value) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    return value in (None, "", 0, []) and value is not False


FIRST = 5  # items of a list printed on the terminal; the store's report keeps them all
LINE = 300  # characters of one printed line at most
WHERE = "all in the store's report: cfbuild inspect --json, or cfbuild view"


def _text(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{_label(k)} {_text(v)}" for k, v in value.items() if not _empty(v))
    if isinstance(value, list):
        items = [f"({_text(v)})" if isinstance(v, dict) else str(v) for v in value]
        return short_list(items, FIRST, WHERE) if len(items) > FIRST else ", ".join(items)
    return str(value)


def format_report(report: dict) -> str:
    lines = [f"notice: split {name!r} skipped: its files are absent" for name in report.get("missing_splits", [])]
    lines += [f"{_label(key)}: {_text(value)}" for key, value in report.items()
              if key not in ("missing_splits", "splits") and not _empty(value)]
    for name, stats in report.get("splits", {}).items():
        scalars = [f"{_label(k)} {v}" for k, v in stats.items() if not isinstance(v, (list, dict))]
        lines.append(f"{name}: " + ", ".join(scalars))
        for key, value in stats.items():
            if isinstance(value, (list, dict)) and not _empty(value):
                notes = [f"  {note}" for note in value[:FIRST]] + \
                    ([f"  ... {len(value) - FIRST} more notes ({WHERE})"] if len(value) > FIRST else [])
                lines += notes if key == "notes" else [f"  {_label(key)}: {_text(value)}"]
    cut = f" ... ({WHERE})"
    return "\n".join(line if len(line) <= LINE else line[:LINE - len(cut)] + cut for line in lines)
