"""A learning curve: the metric against the fraction of training pairs, per mode, and its picture."""

from __future__ import annotations

from fractions import Fraction

from cfpairs.errors import UserError
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
               "alignment": (r["metrics"].get("alignment", {}).get(split) or {}).get("cosine"), "run": r["folder"]}
              for r in records]
    modes = list(dict.fromkeys(p["mode"] for p in points))
    fractions = sorted({p["fraction"] for p in points})
    seeds = sorted({p["seed"] for p in points})
    return {"task": common["task"], "store": common["store"], "unverified": common["unverified"],
            "metric": metric, "split": split,
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
             *unverified_note({"unverified": curve.get("unverified", 0)}, len(curve["points"])),
             "| fraction | " + " | ".join(modes) + " |", "|---:|" + "---:|" * len(modes)]
    for i, f in enumerate(curve["fractions"]):
        cells = []
        for mode in modes:
            row = curve["summary"][mode][i]
            cells.append("-" if row["mean"] is None else f"{row['mean']:.1f}" + (
                f" ± {row['stderr']:.1f}" if row["stderr"] is not None else f" (n={row['n']})"))
        lines.append(f"| {Fraction(f).limit_denominator(100)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_picture(curve: dict):
    """A function writing curve.png for `curve` (matplotlib imported only when drawn)."""
    from cftrain.plots import curve_png  # noqa: PLC0415

    bands = {mode: [(row["fraction"], row["mean"], row["mean"] - (row["stderr"] or 0), row["mean"] + (row["stderr"] or 0))
                    for row in curve["summary"][mode] if row["mean"] is not None] for mode in curve["modes"]}
    return lambda path: curve_png(bands, path, curve["metric"], curve["split"],
                                  f"{curve['task']}: {curve['split']} {curve['metric']}, mean ± s.e. over seeds "
                                  f"{','.join(map(str, curve['seeds']))}")
