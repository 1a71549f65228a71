"""A run's predictions for `cfbuild view --predictions FILE`: the JSON page `cftrain eval RUN STORE
--predictions FILE` writes. Read without the trainer, and checked like anything that arrives: the
store it was made on (by content digest), the split, and every list's length and values."""

from __future__ import annotations

import math
from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.jsontext import strict_loads

BADGES = ("both", "original", "edited", "none", "moved", "steady", None)  # moved/steady: keep pairs


def read_predictions(path, digest: str, split: str, rows: int, pairs: int) -> dict:
    """{members, ensemble, correct, consistency} of `split` (`rows` examples, `pairs` pairs) of the
    store whose content digest is `digest`; a UserError naming the file and the key otherwise."""
    path = Path(path)
    try:
        page = strict_loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"--predictions {path}: not a readable JSON page ({' '.join(str(exc).split())[:100]})") \
            from None
    if not isinstance(page, dict) or page.get("kind") != "predictions":
        raise UserError(f"--predictions {path}: not a predictions page (cftrain eval RUN STORE --predictions FILE "
                        "writes one)")
    if page.get("store_digest") != digest:
        raise UserError(f"--predictions {path}: made on another store (digest {str(page.get('store_digest'))[:12]}..., "
                        f"this one {digest[:12]}...)")
    found = page.get("splits")
    if not isinstance(found, dict) or split not in found or not isinstance(found[split], dict):
        raise UserError(f"--predictions {path}: holds no split {split!r}")
    return _checked(found[split], path, split, rows, pairs)


def _checked(values: dict, path: Path, split: str, rows: int, pairs: int) -> dict:
    def fail(key: str, problem: str):
        raise UserError(f"--predictions {path}: splits.{split}.{key}: {problem}")

    members = values.get("members")
    if not isinstance(members, list) or not members:
        fail("members", "expected a list of each member's predictions")
    for k, member in enumerate(members):
        if not isinstance(member, list) or len(member) != rows or not all(isinstance(p, str) for p in member):
            fail(f"members.{k}", f"expected {rows} predictions (texts), one per row of the split")
    ensemble = values.get("ensemble")
    if not isinstance(ensemble, list) or len(ensemble) != rows or not all(isinstance(p, str) for p in ensemble):
        fail("ensemble", f"expected {rows} predictions (texts)")
    correct = values.get("correct")
    if not isinstance(correct, list) or len(correct) != pairs or any(c not in BADGES for c in correct):
        fail("correct", f"expected {pairs} badges, each one of {', '.join(b for b in BADGES if b)} or null")
    overall = (values.get("consistency") or {}).get("all", {}) if isinstance(values.get("consistency"), dict) else {}
    value = overall.get("consistency") if isinstance(overall, dict) else None
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value) or not 0 <= value <= 100):
        fail("consistency.all.consistency", f"{value!r} is not a percentage")
    return {"members": members, "ensemble": ensemble, "correct": correct, "consistency": values.get("consistency"),
            "columns": _columns(values.get("columns", {}), fail)}


def _columns(columns, fail) -> list:
    """[(header, value or None, n, better)] of the page's registered columns (cftrain's `columns`)."""
    if not isinstance(columns, dict):
        fail("columns", "expected an object of columns")
    out = []
    for name, cell in columns.items():
        if not isinstance(cell, dict) or not isinstance(cell.get("header", ""), str) or \
                cell.get("better") not in ("lower", "higher"):
            fail(f"columns.{name[:40]}", "expected {header, value, n, better}")
        value, n = cell.get("value"), cell.get("n")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            fail(f"columns.{name[:40]}.value", f"{value!r} is not a finite number")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            fail(f"columns.{name[:40]}.n", f"{n!r} is not a count")
        out.append((cell["header"][:40] or name[:40], value, n, cell["better"]))
    return out

