"""A sweep's summary: trials ranked per mode on val (or on held-out folds), the top trials'
seeds, the retrained finals of a k-fold selection and their transfer columns."""

from __future__ import annotations

import json
import math
import statistics

from cftrain.metrics import mean_se
from cftrain.views.common import common_of, seed_of, unverified_note


def sweep_view(records: list, top: int = 5) -> dict:
    """summary.json: per mode, trials ranked by the mean val metric over seeds (val only)."""
    common = common_of(records, "sweep")
    rows = [{"mode": r["config"]["mode"], "trial": r["labels"].get("trial", 0), "seed": seed_of(r),
             "options": r["labels"].get("options", {}), "splits": r["metrics"]["splits"], "run": r["folder"],
             "evals": r.get("evals", {}), "fold": r["labels"].get("fold"), "final": r["labels"].get("final", False),
             "columns": r["metrics"].get("columns", {}),
             "best_epoch": r["metrics"]["best_epoch"]} for r in records]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    folds = {r["config"].get("folds") for r in records} - {None}
    summary = summarise(common["task"], common["metric"], [r for r in rows if not r["final"]], modes, seeds, top,
                        folds=max(folds) if folds else None)
    summary["final"] = finals([r for r in rows if r["final"]], common["metric"], summary["modes"])
    summary["unverified"], summary["runs"] = common["unverified"], len(records)
    return summary


def refit_epochs(entry: dict) -> int:
    """Epochs of a trial retrained on train+val: the median of its fold runs' best epochs."""
    return max(1, int(round(statistics.median(entry["best_epochs"]))))


def finals(rows: list, metric: str, ranked: dict) -> dict:
    """Per mode, its chosen trial retrained on train+val (k-fold selection): every split's mean
    and standard error over seeds. Refits of an earlier choice (before more trials or seeds
    changed it) stay in their folders and are left out."""
    out = {}
    for mode, entries in ranked.items():
        if not entries:
            continue
        runs = [r for r in rows if r["mode"] == mode and r["trial"] == entries[0]["trial"]
                and r["best_epoch"] == refit_epochs(entries[0])]
        if not runs:
            continue
        out[mode] = {"trial": runs[0]["trial"], "options": runs[0]["options"], "epochs": runs[0]["best_epoch"],
                     "seeds": [r["seed"] for r in runs], "runs": [r["run"] for r in runs],
                     "splits": {s: mean_se(r["splits"][s]["all"][metric] for r in runs) for s in runs[0]["splits"]},
                     "transfers": transfer_means([r.get("evals", {}) for r in runs], metric)}
    return out


def summarise(task: str, metric: str, rows: list, modes: list, seeds: list, top: int,
              folds: int | None = None) -> dict:
    """Per mode, its trials ranked by the mean val metric over seeds (val only: other splits are
    reported, never used to choose), each split's mean and standard error beside it. `folds`: val
    is each run's held-out fold, the mean over seeds and folds."""
    ranked = {}
    for mode in modes:
        trials = sorted({r["trial"] for r in rows if r["mode"] == mode})
        entries = []
        for trial in trials:
            runs = [r for r in rows if r["mode"] == mode and r["trial"] == trial]
            splits = {s: mean_se(r["splits"][s]["all"][metric] for r in runs) for s in runs[0]["splits"]}
            entries.append({"trial": trial, "options": runs[0]["options"],
                            "seeds": list(dict.fromkeys(r["seed"] for r in runs)),
                            "best_epochs": [r.get("best_epoch") for r in runs],
                            "splits": splits, "runs": [r.get("run") for r in runs],
                            "columns": column_means([r.get("columns", {}) for r in runs]),
                            "transfers": transfer_means([r.get("evals", {}) for r in runs], metric)})
        entries.sort(key=lambda e: -math.inf if e["splits"]["val"]["mean"] is None else e["splits"]["val"]["mean"],
                     reverse=True)
        ranked[mode] = entries[:top]
    selection = "mean val over seeds" if not folds else (
        f"mean held-out fold over {folds} folds of train+val pair groups and seeds; "
        "the chosen trial retrained on train+val")
    return {"task": task, "metric": metric, "selection": selection, "folds": folds, "seeds": seeds, "modes": ranked}


def column_means(per_run: list) -> dict:
    """{column: {split: mean and standard error over the runs}} of the runs' registered columns."""
    names = dict.fromkeys(n for columns in per_run for n in columns)
    return {n: {s: mean_se(c.get(n, {}).get(s, {}).get("value") for c in per_run)
                for s in dict.fromkeys(s for c in per_run for s in c.get(n, {}))} for n in names}


def _column_cells(entries: list) -> tuple[list, list]:
    """([(column, split)], [header]) of the entries' columns, every split but train."""
    from cftrain.columns import COLUMNS  # noqa: PLC0415

    pairs = list(dict.fromkeys((n, s) for e in entries for n, splits in e.get("columns", {}).items()
                               for s in splits if s != "train"))
    return pairs, [f"{s} {COLUMNS[n].header if n in COLUMNS else n}" for n, s in pairs]


def transfer_means(evals: list, metric: str) -> dict:
    """{name: {split: mean and standard error over seeds}} of runs' transfer evaluations (the seeds
    evaluated there: a trial outside a sweep's top is not)."""
    names = list(dict.fromkeys(n for e in evals for n in e))
    return {n: {s: mean_se(e[n]["splits"][s]["all"][metric] for e in evals if n in e)
                for s in next(e[n]["splits"] for e in evals if n in e)} for n in names}


def sweep_top_runs(records: list, top: int) -> list:
    """The run folders (relative to the sweep's) of each mode's `top` trials by val; with k-fold
    selection, of each mode's chosen trial retrained on train+val."""
    summary = sweep_view(records, top)
    if summary["final"]:
        return [run for final in summary["final"].values() for run in final["runs"]]
    return [run for entries in summary["modes"].values() for e in entries for run in e["runs"]]


def sweep_results(records: list) -> str:
    """results.jsonl: one line per run (options, val, every split), for pandas and friends."""
    lines = []
    for r in records:
        metric = r["metrics"]["metric"]
        lines.append(json.dumps({"mode": r["config"]["mode"], "trial": r["labels"].get("trial", 0),
                                 "seed": seed_of(r), "fold": r["labels"].get("fold"),
                                 "final": r["labels"].get("final", False), "options": r["labels"].get("options", {}),
                                 "val": r["metrics"]["splits"].get("val", {}).get("all", {}).get(metric),
                                 "metric": metric,
                                 "best_epoch": r["metrics"]["best_epoch"], "splits": r["metrics"]["splits"],
                                 "run": r["folder"]}, allow_nan=False))
    return "".join(line + "\n" for line in lines)


def _transfer_columns(found) -> tuple[list, list]:
    """([(name, split)], [header]) of transfer means ({name: {split: ...}}): the name alone for a
    transfer store of one split."""
    columns = list(dict.fromkeys((n, s) for transfers in found for n, splits in transfers.items() for s in splits))
    return columns, [n if sum(m == n for m, _ in columns) == 1 else f"{n} {s}" for n, s in columns]


def _mean_cell(summary: dict | None) -> str:
    if not summary or summary.get("mean") is None:
        return "-"
    if summary.get("stderr") is None:
        return f"{summary['mean']:.1f}" + (f" (n={summary['n']})" if summary.get("n") == 1 else "")
    return f"{summary['mean']:.1f} ± {summary['stderr']:.1f}"


def format_summary(summary: dict) -> str:
    metric = summary["metric"]
    folds = summary.get("folds")
    by = f"mean held-out fold {metric} over {folds} folds of train+val and seeds" if folds else \
        f"mean val {metric} over seeds"
    lines = [f"Task `{summary['task']}`: trials ranked by {by} {', '.join(map(str, summary['seeds']))} "
             f"(selection on {'train+val' if folds else 'val'} only); mean ± standard error in %.", "",
             *unverified_note(summary, summary.get("runs", 0))]
    for mode, entries in summary["modes"].items():
        splits = list(dict.fromkeys(s for e in entries for s in e["splits"] if s != "train"))
        transfers, names = _transfer_columns(e.get("transfers", {}) for e in entries)
        columns, column_names = _column_cells(entries)
        headers = splits + column_names + names
        lines += [f"**{mode}**", "", "| trial | " + " | ".join(headers) + " | options |",
                  "|---:|" + "---:|" * len(headers) + "---|"]
        for e in entries:
            cells = [_mean_cell(e["splits"].get(s)) for s in splits] + \
                [_mean_cell(e.get("columns", {}).get(n, {}).get(s)) for n, s in columns] + \
                [_mean_cell(e.get("transfers", {}).get(n, {}).get(s)) for n, s in transfers]
            options = ", ".join(f"{k}={v}" for k, v in e["options"].items()) or "(preset)"
            lines.append(f"| {e['trial']} | " + " | ".join(cells) + f" | {options} |")
        lines.append("")
    for mode, final in summary.get("final", {}).items():
        splits = [s for s in final["splits"] if s != "train"]
        transfers, names = _transfer_columns([final["transfers"]])
        lines += [f"**{mode}: trial {final['trial']} retrained on train+val for {final['epochs']} epochs** "
                  f"(seeds {', '.join(map(str, final['seeds']))})", ""]
        if not splits and not names:  # nothing held out to show: say where the models are
            lines += [f"No test split in the store: the retrained runs are {', '.join(final['runs'])} "
                      "(evaluate them with cftrain eval, or add --transfer).", ""]
            continue
        lines += ["| " + " | ".join(splits + names) + " |", "|" + "---:|" * (len(splits) + len(names)),
                  "| " + " | ".join([_mean_cell(final["splits"][s]) for s in splits] +
                                    [_mean_cell(final["transfers"][n][t]) for n, t in transfers]) + " |", ""]
    return "\n".join(lines).rstrip()
