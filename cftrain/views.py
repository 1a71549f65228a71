"""Views over run records ({folder, labels, config, metrics}: what `cftrain.jobs` reads back from
run directories): the table (the paper's Table 3), a sweep's summary, a learning curve. Views are
computed from records alone, so `cftrain collect` renders any of them from any folder of runs,
results of separate invocations combined.
"""

from __future__ import annotations

import json
import math
import statistics
from fractions import Fraction

from cfpairs.errors import UserError
from cftrain.methods import METHODS, method
from cftrain.metrics import mean_se
from cftrain.presets import identity

VIEWS = ("table", "sweep", "curve")


def _common(records: list, what: str) -> dict:
    """Task, metric and store digest shared by every record (runs of other stores never mix)."""
    if not records:
        raise UserError(f"{what}: no finished runs found")
    digests = {r["config"].get("store_digest") or r["metrics"].get("store_digest") for r in records}
    if len(digests) > 1:
        raise UserError(f"{what}: runs of {len(digests)} different stores (content digests); collect them apart")
    first = records[0]
    return {"task": first["metrics"]["task"], "metric": first["metrics"]["metric"],
            "store": first["config"].get("store"),
            "input_kind": first["config"].get("store_signature", {}).get("input_kind")}


def _seed_of(record: dict):
    return record["labels"].get("seed", record["config"].get("seed"))


# ---------------------------------------------------------------- table


def _row_groups(records: list) -> list:
    """Records grouped into rows: same options but the seed. Rows in the methods' order, then as found."""
    groups = {}
    for record in records:
        key = json.dumps({k: v for k, v in identity(record["config"]).items() if k not in ("seed", "fraction_seed")},
                         sort_keys=True)
        groups.setdefault(key, []).append(record)
    order = list(METHODS)
    rows = sorted(groups.values(), key=lambda rs: order.index(rs[0]["config"]["mode"])
                  if rs[0]["config"]["mode"] in order else len(order))
    return rows


def _distinguishing(rows: list) -> list:
    """For each row, the options that set it apart from other rows of the same mode ("" when alone)."""
    out = []
    for rs in rows:
        config = identity(rs[0]["config"])
        twins = [identity(o[0]["config"]) for o in rows if o is not rs and o[0]["config"]["mode"] == config["mode"]]
        keys = sorted({k for t in twins for k in config if t.get(k) != config.get(k)} - {"seed", "fraction_seed"})
        out.append(", ".join(f"{k}={config[k]}" for k in keys))
    return out


def table_view(records: list, seeds: list | None = None) -> dict:
    """table.json: one row per group of runs that differ only by seed; with `seeds` (or several
    seeds in a row), every cell the mean and standard error over seeds."""
    common = _common(records, "table")
    rows = []
    groups = _row_groups(records)
    for group, extra in zip(groups, _distinguishing(groups)):
        group = sorted(group, key=lambda r: (_seed_of(r) is None, _seed_of(r) or 0))
        labels_seeds = [r["labels"].get("seed") for r in group]
        with_seeds = seeds is not None or len(group) > 1 or labels_seeds != [None]
        row = table_row(group[0]["config"]["mode"], common["input_kind"], common["metric"],
                        [r["metrics"] for r in group], [_seed_of(r) for r in group] if with_seeds else None,
                        [r.get("evals", {}) for r in group])
        if extra:
            row["name"] += f" ({extra})"
        rows.append(row)
    with_seeds = seeds is not None or any(r["labels"].get("seed") is not None for r in records)
    used = sorted({_seed_of(r) for r in records if _seed_of(r) is not None}) if with_seeds else None
    return {"task": common["task"], "store": common["store"], "metric": common["metric"],
            "seeds": seeds if seeds is not None else used, "rows": rows}


def table_row(name: str, input_kind: str, metric: str, results: list, seeds: list | None,
              evals: list | None = None) -> dict:
    """One row: its run's metrics, or with seeds the mean over seeds of every split, group, pair
    consistency and alignment (with `stderr` beside each mean) and each seed's run under `runs`.
    `evals`: each run's transfer evaluations ({name: cftrain eval's output}), one column each."""
    row = {"name": method(name).table_row_name(input_kind) if name in METHODS else name, "mode": name}
    evals = evals or [{} for _ in results]
    names = list(dict.fromkeys(n for e in evals for n in e))
    if seeds is None:
        only = results[0]
        return {**row, "best_epoch": only["best_epoch"], "splits": only["splits"],
                "consistency": only.get("consistency", {}), "alignment": only.get("alignment", {}),
                "transfers": {n: {"splits": evals[0][n]["splits"], "consistency": evals[0][n].get("consistency", {})}
                              for n in names}}
    alignment = {split: {"cosine": mean_se((r.get("alignment", {}).get(split, {}).get("cosine") for r in results),
                                           digits=4)["mean"]}
                 for split in results[0].get("alignment", {})}
    transfers = {}
    for n in names:
        found = [e[n] for e in evals if n in e]
        transfers[n] = {"splits": mean_groups([f["splits"] for f in found], metric),
                        "consistency": mean_groups([f.get("consistency", {}) for f in found], "consistency",
                                                   count="pairs")}
    return {**row, "best_epoch": [r["best_epoch"] for r in results], "splits": mean_groups(
                [r["splits"] for r in results], metric),
            "consistency": mean_groups([r.get("consistency", {}) for r in results], "consistency", count="pairs"),
            "alignment": alignment, "transfers": transfers,
            "runs": [{"seed": seed, "splits": r["splits"], "consistency": r.get("consistency", {}),
                      "transfers": {n: e[n]["splits"] for n in e}} for seed, r, e in zip(seeds, results, evals)]}


def mean_groups(per_seed: list, key: str, count: str = "n") -> dict:
    """{split: {group: {count, key: mean, stderr, seeds}}}: the mean and standard error over seeds of
    each group's `key` in per-seed {split: {group: {count, key}}} (the first seed's layout)."""
    out = {}
    for split, groups in (per_seed[0] if per_seed else {}).items():
        out[split] = {}
        for group, values in groups.items():
            summary = mean_se(r.get(split, {}).get(group, {}).get(key) for r in per_seed)
            out[split][group] = {count: values[count], key: summary["mean"], "stderr": summary["stderr"],
                                 "seeds": summary["n"]}
    return out


def table_columns(table: dict) -> list:
    """[(header, function of a row -> cell dict or None, value key)]: the paper's layout: every
    evaluated split and group (val first), each split's pair consistency, then each transfer set."""
    metric, rows, columns = table["metric"], table["rows"], []
    seen = lambda header: header in [c[0] for c in columns]
    for row in rows:
        for split, groups in row["splits"].items():
            for group, values in groups.items():
                header = f"{split} {group} (n={values['n']})"
                if split != "train" and not seen(header):
                    columns.append((header, lambda r, s=split, g=group: r["splits"].get(s, {}).get(g), metric))
    for row in rows:
        for split, kinds in row.get("consistency", {}).items():
            header = f"{split} consistency (pairs={kinds['all']['pairs']})" if "all" in kinds else None
            if header and split != "train" and not seen(header):
                columns.append((header, lambda r, s=split: r.get("consistency", {}).get(s, {}).get("all"),
                                "consistency"))
    for row in rows:
        for name, found in row.get("transfers", {}).items():
            for split, groups in found["splits"].items():
                header = (name if len(found["splits"]) == 1 else f"{name} {split}") + \
                    f" (n={groups['all']['n']})"
                if not seen(header):
                    columns.append((header, lambda r, n=name, s=split:
                                    r.get("transfers", {}).get(n, {}).get("splits", {}).get(s, {}).get("all"), metric))
    return columns


def format_table(table: dict) -> str:
    """Markdown: one row per method; columns as `table_columns` (metric in %, n in the header), then
    each split's alignment."""
    metric = table["metric"]
    columns = table_columns(table)
    aligned = list(dict.fromkeys(s for row in table["rows"] for s in row.get("alignment", {}) if s != "train"))
    header = "| method | " + " | ".join([c[0] for c in columns] + [f"{s} alignment" for s in aligned]) + " |"
    seeds = table.get("seeds")
    over = f"mean ± standard error over seeds {', '.join(map(str, seeds))}, " if seeds else ""
    lines = [f"Task `{table['task']}`, {metric} in %, {over}best epoch by val {metric}; consistency: pairs whose "
             "original and edit are both right, %; alignment: mean cos(g, t) over the split's pairs.", "",
             header, "|---|" + "---:|" * (len(columns) + len(aligned))]
    for row in table["rows"]:
        cells = []
        for _, cell_of, key in columns:
            values = cell_of(row)
            if not values or values.get(key) is None:
                cells.append("-")
            else:
                se = values.get("stderr")
                cells.append(f"{values[key]:.1f}" + (f" ± {se:.1f}" if se is not None else ""))
        for split in aligned:
            value = row.get("alignment", {}).get(split, {}).get("cosine")
            cells.append("-" if value is None else f"{value:.3f}")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- sweep


def sweep_view(records: list, top: int = 5) -> dict:
    """summary.json: per mode, trials ranked by the mean val metric over seeds (val only)."""
    common = _common(records, "sweep")
    rows = [{"mode": r["config"]["mode"], "trial": r["labels"].get("trial", 0), "seed": _seed_of(r),
             "options": r["labels"].get("options", {}), "splits": r["metrics"]["splits"], "run": r["folder"],
             "evals": r.get("evals", {}), "fold": r["labels"].get("fold"), "final": r["labels"].get("final", False),
             "best_epoch": r["metrics"]["best_epoch"]} for r in records]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    folds = {r["config"].get("folds") for r in records} - {None}
    summary = summarise(common["task"], common["metric"], [r for r in rows if not r["final"]], modes, seeds, top,
                        folds=max(folds) if folds else None)
    summary["final"] = finals([r for r in rows if r["final"]], common["metric"], summary["modes"])
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
                            "transfers": transfer_means([r.get("evals", {}) for r in runs], metric)})
        entries.sort(key=lambda e: -math.inf if e["splits"]["val"]["mean"] is None else e["splits"]["val"]["mean"],
                     reverse=True)
        ranked[mode] = entries[:top]
    selection = "mean val over seeds" if not folds else \
        f"mean held-out fold over {folds} folds of train+val pair groups and seeds; the chosen trial retrained on train+val"
    return {"task": task, "metric": metric, "selection": selection, "folds": folds, "seeds": seeds, "modes": ranked}


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
                                 "seed": _seed_of(r), "fold": r["labels"].get("fold"),
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
    return f"{summary['mean']:.1f}" + (f" ± {summary['stderr']:.1f}" if summary.get("stderr") is not None else "")


def format_summary(summary: dict) -> str:
    metric = summary["metric"]
    folds = summary.get("folds")
    by = f"mean held-out fold {metric} over {folds} folds of train+val and seeds" if folds else \
        f"mean val {metric} over seeds"
    lines = [f"Task `{summary['task']}`: trials ranked by {by} {', '.join(map(str, summary['seeds']))} "
             f"(selection on {'train+val' if folds else 'val'} only); mean ± standard error in %.", ""]
    for mode, entries in summary["modes"].items():
        splits = list(dict.fromkeys(s for e in entries for s in e["splits"] if s != "train"))
        transfers, names = _transfer_columns(e.get("transfers", {}) for e in entries)
        headers = splits + names
        lines += [f"**{mode}**", "", "| trial | " + " | ".join(headers) + " | options |",
                  "|---:|" + "---:|" * len(headers) + "---|"]
        for e in entries:
            cells = [_mean_cell(e["splits"].get(s)) for s in splits] + \
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


# ---------------------------------------------------------------- curve


def curve_view(records: list, split: str | None = None) -> dict:
    """curve.json: per mode and fraction, the split's metric over seeds."""
    common = _common(records, "curve")
    splits = records[0]["metrics"]["splits"]
    split = split or ("test" if "test" in splits else "val")
    if split not in splits:
        raise UserError(f"--split {split}: the runs have splits {', '.join(splits)}")
    metric = common["metric"]
    points = [{"mode": r["config"]["mode"], "fraction": r["config"].get("fraction", 1.0), "seed": _seed_of(r),
               "value": r["metrics"]["splits"][split]["all"][metric],
               "alignment": (r["metrics"].get("alignment", {}).get(split) or {}).get("cosine"), "run": r["folder"]}
              for r in records]
    modes = list(dict.fromkeys(p["mode"] for p in points))
    fractions = sorted({p["fraction"] for p in points})
    seeds = sorted({p["seed"] for p in points})
    return {"task": common["task"], "store": common["store"], "metric": metric, "split": split,
            "fractions": fractions, "modes": modes, "seeds": seeds, "points": points,
            "summary": summarise_curve(points, modes, fractions)}


def summarise_curve(points: list, modes: list, fractions: list) -> dict:
    """{mode: [{fraction, mean, stderr, n}]} over seeds (`cftrain.metrics.mean_se`)."""
    return {mode: [{"fraction": f, **mean_se(p["value"] for p in points if p["mode"] == mode and p["fraction"] == f)}
                   for f in fractions] for mode in modes}


def format_curve(curve: dict) -> str:
    modes = curve["modes"]
    lines = [f"Task `{curve['task']}`: {curve['split']} {curve['metric']} (%), mean ± standard error over seeds "
             f"{', '.join(map(str, curve['seeds']))}, by fraction of training pair groups.", "",
             "| fraction | " + " | ".join(modes) + " |", "|---:|" + "---:|" * len(modes)]
    for i, f in enumerate(curve["fractions"]):
        cells = []
        for mode in modes:
            row = curve["summary"][mode][i]
            cells.append("-" if row["mean"] is None else f"{row['mean']:.1f} ± {row['stderr']:.1f}")
        lines.append(f"| {Fraction(f).limit_denominator(100)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_picture(curve: dict):
    """A function writing curve.png for `curve` (matplotlib imported only when drawn)."""
    from cftrain.plots import curve_png  # noqa: PLC0415

    bands = {mode: [(row["fraction"], row["mean"], row["mean"] - row["stderr"], row["mean"] + row["stderr"])
                    for row in curve["summary"][mode] if row["mean"] is not None] for mode in curve["modes"]}
    return lambda path: curve_png(bands, path, curve["metric"], curve["split"],
                                  f"{curve['task']}: {curve['split']} {curve['metric']}, mean ± s.e. over seeds "
                                  f"{','.join(map(str, curve['seeds']))}")


# ---------------------------------------------------------------- files of each view


def view_files(view: str, records: list, **options) -> tuple[dict, str]:
    """({file name: text or writer}, Markdown) of a view over `records`."""
    from cftrain.rundir import strict_json  # noqa: PLC0415

    if view == "table":
        table = table_view(records, options.get("seeds"))
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
