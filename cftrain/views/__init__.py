"""Views over run records ({folder, labels, config, metrics}: what `cftrain.jobs` reads back from
run directories): the table (the paper's Table 3), a sweep's summary, a learning curve. Views are
computed from records alone, so `cftrain collect` renders any of them from any folder of runs,
results of separate invocations combined. One module per view: `table`, `sweep`, `curve`.
"""

from __future__ import annotations

from cfpairs.errors import UserError
from cftrain.rundir import strict_json
from cftrain.views.common import VIEWS
from cftrain.views.curve import curve_picture, curve_view, format_curve
from cftrain.views.sweep import format_summary, refit_epochs, summarise, sweep_results, sweep_top_runs, sweep_view
from cftrain.views.table import format_table, table_view


def view_files(view: str, records: list, **options) -> tuple[dict, str]:
    """({file name: text or writer}, Markdown) of a view over `records`."""
    if view == "table":
        table = table_view(records, options.get("seeds"), options.get("references"))
        text = format_table(table)
        return {"table.json": strict_json(table) + "\n", "table.md": text + "\n"}, text
    if view == "sweep":
        summary = sweep_view(records, options.get("top", 5))
        text = format_summary(summary)
        return {"summary.json": strict_json(summary) + "\n", "summary.md": text + "\n",
                "results.jsonl": sweep_results(records)}, text
    if view == "curve":
        curve = curve_view(records, options.get("split"))
        text = format_curve(curve)
        return {"curve.json": strict_json(curve) + "\n", "curve.md": text + "\n",
                "curve.png": curve_picture(curve)}, text
    raise UserError(f"--view {view}: choose from {', '.join(VIEWS)}")


__all__ = ["VIEWS", "curve_picture", "curve_view", "format_curve", "format_summary", "format_table", "refit_epochs",
           "summarise", "sweep_results", "sweep_top_runs", "sweep_view", "table_view", "view_files"]
