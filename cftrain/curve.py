"""`cftrain curve`: a learning curve (the paper's Fig. 5). Each mode trains on nested random
subsets of the training pair groups (the same subsets for every mode, one subset chain per seed;
`original` gets the originals of those groups); the metric on one split, mean and standard error
over seeds, as curve.json, curve.png and a Markdown table (curve.md, also printed)."""

from __future__ import annotations

from fractions import Fraction

from cfpairs.errors import UserError
from cfpairs.store import Store
from cftrain.jobs import Job, run_campaign
from cftrain.presets import check_some_mode_reads, resolve
from cftrain.views import curve_view, view_files

DEFAULT_FRACTIONS = "1/9,1/8,1/7,1/6,1/5,1/4,1/3,1/2,1/1"


def parse_fractions(text: str) -> list[float]:
    """'1/8,1/4,0.5,1' -> sorted fractions in (0, 1]; two that are equal, or equal to 4 decimals (one
    run folder each), are refused."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        values = [float(Fraction(part)) for part in parts]
    except (ValueError, ZeroDivisionError):
        raise UserError(f"--fractions {text}: give fractions such as 1/8,1/4,1/2,1/1") from None
    if not values or min(values) <= 0 or max(values) > 1:
        raise UserError(f"--fractions {text}: every fraction must lie in (0, 1]")
    seen = {}
    for part, value in zip(parts, values):
        key = f"{value:.4f}"
        if key in seen:
            same = "the same fraction" if value == values[parts.index(seen[key])] else "equal to 4 decimals"
            raise UserError(f"--fractions {text}: {seen[key]} and {part} are {same} (one run each); "
                            "give distinct fractions")
        seen[key] = part
    return sorted(values)


def run_curve(store_path, out_dir, fractions: list, modes: list, seeds: list, split: str | None = None,
              force: bool = False, jobs: int | None = None, verify: bool = False, launcher=None,
              **overrides) -> dict:
    with Store(store_path, bool(overrides.get("allow_external"))) as store:
        task, input_kind, splits = store.task, store.input_kind, store.splits
    split = split or ("test" if "test" in splits else "val")
    if split not in splits:
        raise UserError(f"--split {split}: {store_path} has splits {', '.join(splits)}")
    check_some_mode_reads(task, input_kind, modes, overrides)
    planned = [Job(f"{mode}/f{fraction:.4f}-seed{seed}",
                   resolve(task, input_kind, strict=False, **{**overrides, "mode": mode, "fraction": fraction,
                                                              "seed": seed, "fraction_seed": seed}),
                   {"mode": mode, "fraction": fraction, "seed": seed})
               for mode in modes for fraction in fractions for seed in seeds]  # all checked first
    records = run_campaign("curve", store_path, out_dir, planned, jobs, force, verify, desc=f"{task} curve",
                           launcher=launcher,
                           render=lambda rs: view_files("curve", rs, split=split)[0])
    return curve_view(records, split)
