"""`cftrain report`: one Markdown page comparing run directories: the options that differ, the
metrics, gradient alignment, and links to each run's history.png."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cfpairs.outputs import check_output, markdown_signature, write_page
from cftrain.columns import COLUMNS
from cftrain.late_columns import complete_columns
from cftrain.rundir import RunDir

SKIPPED_OPTIONS = ("store_signature", "store_digest", "store_verified")  # the store column shows them


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _store(config: dict) -> str:
    """The store a run trained on: its digest's first characters, and whether the run verified it."""
    digest = str(config.get("store_digest"))[:8]
    return digest if config.get("store_verified") is True else f"{digest} (not verified)"


def report_markdown(run_dirs: list, out: Path) -> str:
    runs = [(Path(d), RunDir(d).read_config(), RunDir(d).read_metrics()) for d in run_dirs]
    for d, config, metrics in runs:  # columns registered since a run was trained, from its predictions
        complete_columns(RunDir(d), config, metrics)
    base = [d.name for d, _, _ in runs]
    names = [d.name if base.count(d.name) == 1 else str(d) for d, _, _ in runs]
    keys = sorted({k for _, config, _ in runs for k in config} - set(SKIPPED_OPTIONS))
    differing = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for _, c, _ in runs}) > 1]
    shared = [k for k in keys if k not in differing]
    lines = [markdown_signature() + f"# Runs compared ({len(runs)})", ""]
    lines += ["## Options that differ", ""]
    if differing:
        lines += ["| run | " + " | ".join(differing) + " |", "|---|" + "---|" * len(differing)]
        lines += [f"| {n} | " + " | ".join(_cell(c.get(k)) for k in differing) + " |"
                  for n, (_, c, _) in zip(names, runs)]
    else:
        lines.append("None: every option is the same.")
    lines += ["", "Shared: " + ", ".join(f"`{k}`={_cell(runs[0][1].get(k))}" for k in shared), ""]
    metric_names = sorted({m.get("metric", "?") for _, _, m in runs})
    columns = list(dict.fromkeys((s, g) for _, _, m in runs for s, groups in m["splits"].items() if s != "train"
                                 for g in groups))
    lines += [f"## Metrics ({', '.join(metric_names)}, %)", "",
              "| run | store | best epoch | " + " | ".join(f"{s} {g}" for s, g in columns) + " |",
              "|---|---|---:|" + "---:|" * len(columns)]
    extra = list(dict.fromkeys((n, s) for _, _, m in runs for n, splits in m.get("columns", {}).items()
                               for s in splits if s != "train"))
    lines[-2] += "".join(f" {s} {COLUMNS[n].header if n in COLUMNS else n} |" for n, s in extra)
    lines[-1] += "---:|" * len(extra)
    for name, (_, c, m) in zip(names, runs):
        cells = [_metric(m, s, g) for s, g in columns] + [_column(m, n, s) for n, s in extra]
        lines.append(f"| {name} | {_store(c)} | {m.get('best_epoch', '-')} | " + " | ".join(cells) + " |")
    aligned = list(dict.fromkeys(s for _, _, m in runs for s in m.get("alignment", {})))
    if aligned:
        lines += ["", "## Gradient alignment (mean cos(g, t) over each split's pairs)", "",
                  "| run | " + " | ".join(aligned) + " |", "|---|" + "---:|" * len(aligned)]
        for name, (_, _, m) in zip(names, runs):
            values = [(m.get("alignment", {}).get(s) or {}).get("cosine") for s in aligned]
            lines.append(f"| {name} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in values) + " |")
    lines += ["", "## Training histories", ""]
    for name, (d, _, _) in zip(names, runs):
        png = d / "history.png"
        link = os.path.relpath(png.resolve(), out.resolve().parent)
        lines.append(f"- {name}: ![history of {name}]({link})" if png.is_file() else
                     f"- {name}: no history (not trained)")
    return "\n".join(lines) + "\n"


def _metric(metrics: dict, split: str, group: str) -> str:
    values = metrics["splits"].get(split, {}).get(group)
    if not values:
        return "-"
    value = values.get(metrics.get("metric", ""))
    return "-" if value is None else f"{value:.1f}"


def _column(metrics: dict, name: str, split: str) -> str:
    value = metrics.get("columns", {}).get(name, {}).get(split, {}).get("value")
    return "-" if value is None else f"{value:.1f}"


def write_report(run_dirs: list, out, force: bool = False) -> str:
    out = Path(out)
    check_output(out, "markdown", force, inputs=run_dirs)
    for d in run_dirs:
        RunDir(d).read_metrics()  # a directory without metrics.json is refused, naming it
    text = report_markdown(run_dirs, out)
    write_page(out, "markdown", text, force, inputs=run_dirs)
    return text
