"""`cftrain collect`: any view (table, sweep, curve) over every finished run under a folder."""

from __future__ import annotations

from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.outputs import owner, staged
from cftrain.jobs import collect_records, write_view_files
from cftrain.views import VIEWS, view_files


def collect(folder, view: str | None = None, out=None, split: str | None = None, top: int = 5,
            force: bool = False) -> str:
    """The view's Markdown; with `out`, its files written into that new folder (staged)."""
    folder = Path(folder)
    view = view or owner(folder)
    if view not in VIEWS:
        raise UserError(f"{folder}: not a table, sweep or curve folder; give --view table, sweep or curve")
    records = collect_records(folder)
    if not records:
        raise UserError(f"{folder}: holds no finished runs")
    files, text = view_files(view, records, split=split, top=top)
    if out is not None:
        with staged(out, view, force, inputs=[folder]) as tmp:
            write_view_files(Path(tmp), files)
    return text
