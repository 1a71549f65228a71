"""`cftrain curve`: a learning curve (the paper's Fig. 5). Each mode trains on nested random
subsets of the training pair groups (the same subsets for every mode, one subset chain per seed;
`original` gets the originals of those groups); the metric on one split, mean and standard error
over seeds, as curve.json, curve.png and a Markdown table (curve.md, also printed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path


from cfpairs.check import check_store
from cfpairs.errors import UserError
from cfpairs.label_kinds import label_kind
from cfpairs.progress import Progress
from cfpairs.staging import staged_dir
from cfpairs.store import Store
from cftrain.metrics import mean_se
from cftrain.plots import curve_png
from cftrain.presets import resolve
from cftrain.rundir import write_json_atomic
from cftrain.train import run_into

DEFAULT_FRACTIONS = "1/9,1/8,1/7,1/6,1/5,1/4,1/3,1/2,1/1"


def parse_fractions(text: str) -> list[float]:
    """'1/8,1/4,0.5,1' -> sorted distinct fractions in (0, 1]."""
    try:
        values = sorted({float(Fraction(part.strip())) for part in text.split(",") if part.strip()})
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--fractions {text}: give fractions such as 1/8,1/4,1/2,1/1") from None
    if not values or values[0] <= 0 or values[-1] > 1:
        raise UserError(f"--fractions {text}: every fraction must lie in (0, 1]")
    return values


def run_curve(store_path, out_dir, fractions: list, modes: list, seeds: list, split: str | None = None,
              force: bool = False, **overrides) -> dict:
    with Store(store_path) as store:
        task, input_kind, splits = store.task, store.input_kind, store.splits
        metric = label_kind(store.label_kind).metric
    split = split or ("test" if "test" in splits else "val")
    if split not in splits:
        raise UserError(f"--split {split}: {store_path} has splits {', '.join(splits)}")
    plan = [(mode, f, seed) for mode in modes for f in fractions for seed in seeds]
    configs = {key: resolve(task, input_kind, **{**overrides, "mode": key[0], "fraction": key[1], "seed": key[2],
                                                  "fraction_seed": key[2]}) for key in plan}  # all checked first
    check_store(store_path)  # once for every run
    points = []
    with staged_dir(out_dir, force) as tmp, Progress(len(plan), f"{task} curve", unit="runs",
                                                      every_update=True) as bar:
        for (mode, fraction, seed), config in configs.items():
            run_dir = Path(tmp) / mode / f"f{fraction:.4f}-seed{seed}"
            run_dir.mkdir(parents=True)
            metrics = run_into(run_dir, store_path, config, check=False)
            value = metrics["splits"][split]["all"][metric]
            points.append({"mode": mode, "fraction": fraction, "seed": seed, "value": value,
                           "alignment": (metrics.get("alignment", {}).get(split) or {}).get("cosine"),
                           "run": str(run_dir.relative_to(tmp))})
            bar.set_postfix(mode=mode, fraction=round(fraction, 4), seed=seed, value=value)
            bar.update()
        curve = {"task": task, "store": str(store_path), "metric": metric, "split": split,
                 "fractions": fractions, "modes": modes, "seeds": seeds, "points": points,
                 "summary": summarise(points, modes, fractions)}
        write_json_atomic(Path(tmp) / "curve.json", curve)
        bands = {mode: [(row["fraction"], row["mean"], row["mean"] - row["stderr"], row["mean"] + row["stderr"])
                        for row in curve["summary"][mode]] for mode in modes}
        curve_png(bands, Path(tmp) / "curve.png", metric, split,
                  f"{task}: {split} {metric}, mean ± s.e. over seeds {','.join(map(str, seeds))}")
        (Path(tmp) / "curve.md").write_text(format_curve(curve) + "\n")
    return curve


def summarise(points: list, modes: list, fractions: list) -> dict:
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
