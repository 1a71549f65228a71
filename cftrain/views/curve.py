"""A learning curve: the metric against the fraction of training pairs, per mode, and its picture."""

from __future__ import annotations

from fractions import Fraction

from cfpairs.errors import UserError
from cftrain.columns import COLUMNS
from cftrain.metrics import mean_se
from cftrain.views.common import common_of, seed_of, unverified_note


def curve_view(records: list, split: str | None = None) -> dict:
    """curve.json: per mode and fraction, the split's metric over seeds."""
    common = common_of(records, "curve")  # one store: points of a curve are compared
    splits = records[0]["metrics"]["splits"]
    split = split or ("test" if "test" in splits else "val")
    if split not in splits:
        raise UserError(f"--split {split}: the runs have splits {', '.join(splits)}")
    metric = common["metric"]
    points = [{"mode": r["config"]["mode"], "fraction": r["config"].get("fraction", 1.0), "seed": seed_of(r),
               "value": r["metrics"]["splits"][split]["all"][metric],
               "alignment": (r["metrics"].get("alignment", {}).get(split) or {}).get("cosine"), "run": r["folder"],
               "columns": {n: cells.get(split, {}).get("value") for n, cells in r["metrics"].get("columns", {}).items()}}
              for r in records]
    modes = list(dict.fromkeys(p["mode"] for p in points))
    fractions = sorted({p["fraction"] for p in points})
    seeds = sorted({p["seed"] for p in points})
    return {"task": common["task"], "store": common["store"], "unverified": common["unverified"],
            "metric": metric, "split": split,
            "fractions": fractions, "modes": modes, "seeds": seeds, "points": points,
            "summary": summarise_curve(points, modes, fractions),
            "columns": {name: summarise_curve(points, modes, fractions, name) for name in
                        dict.fromkeys(n for p in points for n in p["columns"])}}


def summarise_curve(points: list, modes: list, fractions: list, column: str | None = None) -> dict:
    """{mode: [{fraction, mean, stderr, n}]} over seeds (`cftrain.metrics.mean_se`) of the metric, or
    of a registered column (`cftrain.columns`)."""
    value = (lambda p: p["value"]) if column is None else (lambda p: p["columns"].get(column))
    return {mode: [{"fraction": f, **mean_se(value(p) for p in points if p["mode"] == mode and p["fraction"] == f)}
                   for f in fractions] for mode in modes}


def format_curve(curve: dict) -> str:
    modes = curve["modes"]
    lines = [f"Task `{curve['task']}`: {curve['split']} {curve['metric']} (%), mean ± standard error over seeds "
             f"{', '.join(map(str, curve['seeds']))}, by fraction of training pair groups.", "",
             *unverified_note({"unverified": curve.get("unverified", 0)}, len(curve["points"])),
             "| fraction | " + " | ".join(modes) + " |", "|---:|" + "---:|" * len(modes)]
    lines += _curve_rows(curve, curve["summary"])
    for name, summary in curve.get("columns", {}).items():
        header = COLUMNS[name].header if name in COLUMNS else name
        lines += ["", f"{curve['split']} {header}" + (f" ({COLUMNS[name].better} is better)" if name in COLUMNS
                                                       else "") + ", mean ± standard error over seeds:", "",
                  "| fraction | " + " | ".join(modes) + " |", "|---:|" + "---:|" * len(modes),
                  *_curve_rows(curve, summary)]
    return "\n".join(lines)


def _curve_rows(curve: dict, summary: dict) -> list:
    lines = []
    for i, f in enumerate(curve["fractions"]):
        cells = []
        for mode in curve["modes"]:
            row = summary[mode][i]
            cells.append("-" if row["mean"] is None else f"{row['mean']:.1f}" + (
                f" ± {row['stderr']:.1f}" if row["stderr"] is not None else f" (n={row['n']})"))
        lines.append(f"| {Fraction(f).limit_denominator(100)} | " + " | ".join(cells) + " |")
    return lines


def curve_picture(curve: dict):
    """A function writing curve.png for `curve` (matplotlib imported only when drawn)."""
    from cftrain.plots import curve_png  # noqa: PLC0415

    bands = {mode: [(row["fraction"], row["mean"], row["mean"] - (row["stderr"] or 0), row["mean"] + (row["stderr"] or 0))
                    for row in curve["summary"][mode] if row["mean"] is not None] for mode in curve["modes"]}
    return lambda path: curve_png(bands, path, curve["metric"], curve["split"],
                                  f"{curve['task']}: {curve['split']} {curve['metric']}, mean ± s.e. over seeds "
                                  f"{','.join(map(str, curve['seeds']))}")
