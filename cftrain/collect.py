"""`cftrain collect`: any view (table, sweep, curve) over every finished run under a folder."""

from __future__ import annotations

from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.outputs import owner, staged
from cfpairs.progress import note
from cftrain.jobs import collect_records, write_view_files
from cftrain.late_columns import say_missing
from cftrain.slurm import STATE_FILE, unfinished
from cftrain.reference_rows import collect_references
from cftrain.transfer import check_names_once, check_transfers, evaluate_transfers
from cftrain.views import VIEWS, sweep_top_runs, view_files


def collect(folder, view: str | None = None, out=None, split: str | None = None, top: int = 5,
            force: bool = False, transfers: dict | None = None, device: str = "cpu") -> str:
    """The view's Markdown; with `out`, its files written into that new folder (staged).
    `transfers` ({name: store}): runs not yet evaluated there are evaluated in memory (the folder
    read is never written), each a column beside the transfers its runs already hold."""
    folder = Path(folder)
    view = view or owner(folder)
    if view not in VIEWS:
        raise UserError(f"{folder}: not a table, sweep or curve folder; give --view table, sweep or curve")
    for state in sorted(folder.rglob(STATE_FILE)):  # Slurm campaigns: the runs not finished, said
        said = unfinished(state.parent)
        if said:
            note(said)
    records = collect_records(folder)
    if not records:
        raise UserError(f"{folder}: holds no finished runs")
    say_missing(records, folder)
    if transfers:
        _add_transfers(folder, records, view, top, transfers, device)
    references = collect_references(folder) if view == "table" else []
    files, text = view_files(view, records, split=split, top=top, references=references)
    if out is not None:
        with staged(out, view, force, inputs=[folder, *(transfers or {}).values()]) as tmp:
            write_view_files(Path(tmp), files)
    return text


def _add_transfers(folder: Path, records: list, view: str, top: int, transfers: dict, device: str) -> None:
    """Each record's `evals` completed with `transfers` (a sweep: its top trials only)."""
    digests = check_transfers(records[0]["config"]["store_signature"], transfers,
                              trained_digests={r["config"]["store_digest"] for r in records})
    check_names_once({folder / r["folder"]: r.get("evals", {}) for r in records}, transfers, digests, "")
    chosen = set(sweep_top_runs(records, top)) if view == "sweep" else {r["folder"] for r in records}
    found = evaluate_transfers([folder / r["folder"] for r in records if r["folder"] in chosen], transfers,
                               digests, device, write=False)
    for record in records:
        record["evals"] = {**record.get("evals", {}), **found.get(str(folder / record["folder"]), {})}
