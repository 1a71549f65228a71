"""`cftrain sweep`: seeded random search over a declared space of run options (DomainBed's
`sweep` + `collect_results` ideas), resumable, selected on val only.

    DIR/sweep.json                       store digest, space, fixed options, sweep seed
    DIR/<mode>/trial-<t>/seed-<s>/       an ordinary run directory per (mode, trial, seed)
    DIR/results.jsonl                    one line per finished run: options, val, every split
    DIR/summary.json, DIR/summary.md     per mode, trials ranked by mean val over seeds (written last)

Trial 0 is the preset itself; trial t > 0 draws every option of the space from a generator
seeded by (sweep seed, t), so a trial means the same options whatever --trials, --modes or
--seeds say, and a sweep killed and started again skips the runs already in results.jsonl.
Options a mode does not read (the GS weight for augmentation) are left out of its trials.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError
from cfpairs.label_kinds import label_kind
from cfpairs.staging import check_output_dir, staged_dir
from cfpairs.store import Store
from cftrain.methods import METHODS, method
from cftrain.metrics import mean_se
from cftrain.presets import RunConfig, resolve
from cftrain.rundir import write_json_atomic
from cftrain.table import available_cores, run_rows
from cftrain.train import open_store, run_into

# spec: a list (one of its values), {"uniform": [a, b]}, {"log_uniform": [a, b]}, {"int": [a, b]}
# (inclusive), {"log_scale": [a, b]} (the preset's value times a log-uniform factor in [a, b])
GENERIC_SPACE = {"lr": {"log_scale": [0.3, 3.0]}, "gs_weight": {"log_scale": [0.1, 10.0]}}
DEFAULT_SPACES = {
    "imdb": {"lr": {"log_uniform": [2.0, 15.0]}, "eps": [1e-5, 1e-4], "gs_weight": {"log_uniform": [5.0, 50.0]},
             "embed_init": ["normal", "uniform"], "rho": [0.9, 0.95], "batch_size": [16, 32, 64]},
    "snli": {"lr": {"log_uniform": [0.3, 3.0]}, "gs_weight": {"log_uniform": [0.001, 1.0]},
             "rho": [0.9, 0.95], "batch_size": [128, 256, 512]},
}
NOT_SWEPT = ("mode", "seed", "fraction", "fraction_seed", "device", "threads", "workers")
KINDS = ("uniform", "log_uniform", "int", "log_scale")


def load_space(path) -> dict:
    """A space from a JSON or TOML file ({option: spec}), checked: known options, valid specs."""
    path = Path(path)
    try:
        if path.suffix == ".toml":
            import tomllib
            space = tomllib.loads(path.read_text())
        else:
            space = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: not a readable JSON/TOML space ({error})") from None
    if not isinstance(space, dict) or not space:
        raise UserError(f"{path}: a space is a non-empty mapping of option to spec")
    for key, spec in space.items():
        check_spec(key, spec, path)
    return space


def check_spec(key: str, spec, where) -> None:
    if key not in RunConfig.__dataclass_fields__ or key in NOT_SWEPT:
        raise UserError(f"{where}: {key!r} is not an option a sweep can vary")
    if isinstance(spec, list) and spec:
        return
    ok = (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS
          and isinstance(bounds := next(iter(spec.values())), list) and len(bounds) == 2
          and all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds) and bounds[0] <= bounds[1])
    if not ok or (next(iter(spec)) in ("log_uniform", "log_scale") and bounds[0] <= 0):
        raise UserError(f"{where}: {key}: a spec is a non-empty list of values or one of "
                        f"{', '.join(KINDS)} with [low, high] (low > 0 for log ones), got {spec!r}")


def draw(space: dict, trial: int, sweep_seed: int, preset: RunConfig) -> dict:
    """Trial 0: {} (the preset); else one value per option, from a generator seeded by (seed, trial)."""
    if trial == 0:
        return {}
    rng = np.random.default_rng([sweep_seed, trial])
    values = {}
    for key in sorted(space):
        spec = space[key]
        if isinstance(spec, list):
            values[key] = spec[int(rng.integers(len(spec)))]
            continue
        kind, (low, high) = next(iter(spec.items()))
        if kind == "uniform":
            values[key] = float(rng.uniform(low, high))
        elif kind == "int":
            values[key] = int(rng.integers(int(low), int(high) + 1))
        else:
            value = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            values[key] = value * getattr(preset, key) if kind == "log_scale" else value
        if isinstance(values[key], float):
            values[key] = float(f"{values[key]:.4g}")  # readable options; the draw stays reproducible
    return values


def plan_sweep(task: str, input_kind: str, modes: list, trials: int, seeds: list, space: dict,
               sweep_seed: int, fixed: dict) -> dict:
    """{(mode, trial, seed): (options drawn, resolved RunConfig)}, every config checked up front."""
    plan = {}
    for mode in modes:
        preset = resolve(task, input_kind, **{**fixed, "mode": mode})
        unread = {k for m in METHODS.values() for k in m.reads} - set(method(mode).reads)
        for trial in range(trials):
            options = {k: v for k, v in draw(space, trial, sweep_seed, preset).items() if k not in unread}
            for seed in seeds:
                plan[(mode, trial, seed)] = (options, resolve(task, input_kind, **{**fixed, **options,
                                                                                  "mode": mode, "seed": seed}))
    return plan


def _run_staged(job: tuple) -> dict:
    final, store_path, config = job
    with staged_dir(final, force=True) as tmp:  # a killed run leaves only a .part, removed next time
        return run_into(tmp, store_path, config, check=False)


def run_sweep(store_path, out_dir, modes: list, trials: int, seeds: list, space_path=None, sweep_seed: int = 0,
              jobs: int | None = None, top: int = 5, force: bool = False, verify: bool = False,
              **fixed) -> dict:
    """Run every (mode, trial, seed) not yet in out_dir/results.jsonl, then write the summary."""
    with Store(store_path) as store:
        task, input_kind, digest = store.task, store.input_kind, store.digest
        metric = label_kind(store.label_kind).metric
    space = load_space(space_path) if space_path else DEFAULT_SPACES.get(task, GENERIC_SPACE)
    for key, spec in space.items():
        check_spec(key, spec, "the default space")
    fixed = {k: v for k, v in fixed.items() if v is not None}
    plan = plan_sweep(task, input_kind, modes, trials, seeds, space, sweep_seed, fixed)
    out = Path(out_dir)
    settings = {"store": str(store_path), "store_digest": digest, "space": space, "sweep_seed": sweep_seed,
                "fixed": fixed}
    done = start_or_resume(out, settings, force)
    open_store(store_path, verify)  # the checks of `cfbuild verify` once, before any run
    todo = [key for key in plan if key not in done]
    results_path = out / "results.jsonl"

    folders = {out / m / f"trial-{t}" / f"seed-{s}": (m, t, s) for m, t, s in todo}

    def record(job, metrics):
        key = folders[job[0]]
        line = {"mode": key[0], "trial": key[1], "seed": key[2], "options": plan[key][0],
                "val": metrics["splits"]["val"]["all"][metric], "metric": metric,
                "best_epoch": metrics["best_epoch"], "splits": metrics["splits"],
                "run": str(job[0].relative_to(out))}
        with open(results_path, "a") as fh:
            fh.write(json.dumps(line, allow_nan=False) + "\n")
        done[key] = line

    jobs_args = [(folder, store_path, plan[key][1]) for folder, key in folders.items()]
    for folder in folders:
        folder.parent.mkdir(parents=True, exist_ok=True)
    run_rows(jobs_args, max(1, min(jobs or available_cores(), len(todo) or 1)), f"{task} sweep",
             run=_run_staged, on_done=record)
    summary = summarise(task, metric, [done[k] for k in plan], modes, seeds, top)
    write_json_atomic(out / "summary.json", summary)
    (out / "summary.md").write_text(format_summary(summary) + "\n")
    return summary


def start_or_resume(out: Path, settings: dict, force: bool) -> dict:
    """{(mode, trial, seed): result line} of the runs already finished in `out` (none when new or
    `force`). A sweep of other settings in `out` is an error; a half-written last line (killed
    while writing) is dropped and its run done again."""
    meta = out / "sweep.json"
    if force and out.exists():
        check_output_dir(out, force=True)
        shutil.rmtree(out)
    if not meta.exists():
        check_output_dir(out, force=False)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(meta, settings)
        (out / "results.jsonl").touch()
        return {}
    previous = json.loads(meta.read_text())
    changed = [k for k in settings if previous.get(k) != settings[k]]
    if changed:
        raise UserError(f"{out}: a sweep with other {', '.join(changed)} is there; use another --out, or "
                        "--force to start again")
    done, lines = {}, []
    for line in (out / "results.jsonl").read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        done[(row["mode"], row["trial"], row["seed"])] = row
        lines.append(line)
    (out / "results.jsonl").write_text("".join(line + "\n" for line in lines))
    return done


def summarise(task: str, metric: str, rows: list, modes: list, seeds: list, top: int) -> dict:
    """Per mode, its trials ranked by the mean val metric over seeds (val only: other splits are
    reported, never used to choose), each split's mean and standard error beside it."""
    ranked = {}
    for mode in modes:
        trials = sorted({r["trial"] for r in rows if r["mode"] == mode})
        entries = []
        for trial in trials:
            runs = [r for r in rows if r["mode"] == mode and r["trial"] == trial]
            splits = {s: mean_se(r["splits"][s]["all"][metric] for r in runs) for s in runs[0]["splits"]}
            entries.append({"trial": trial, "options": runs[0]["options"], "seeds": [r["seed"] for r in runs],
                            "splits": splits})
        entries.sort(key=lambda e: -math.inf if e["splits"]["val"]["mean"] is None else e["splits"]["val"]["mean"],
                     reverse=True)
        ranked[mode] = entries[:top]
    return {"task": task, "metric": metric, "selection": "mean val over seeds", "seeds": seeds, "modes": ranked}


def format_summary(summary: dict) -> str:
    metric = summary["metric"]
    lines = [f"Task `{summary['task']}`: trials ranked by mean val {metric} over seeds "
             f"{', '.join(map(str, summary['seeds']))} (selection on val only); mean ± standard error in %.", ""]
    for mode, entries in summary["modes"].items():
        splits = list(dict.fromkeys(s for e in entries for s in e["splits"] if s != "train"))
        lines += [f"**{mode}**", "", "| trial | " + " | ".join(splits) + " | options |",
                  "|---:|" + "---:|" * len(splits) + "---|"]
        for e in entries:
            cells = [f"{e['splits'][s]['mean']:.1f} ± {e['splits'][s]['stderr']:.1f}"
                     if e["splits"].get(s, {}).get("mean") is not None else "-" for s in splits]
            options = ", ".join(f"{k}={v}" for k, v in e["options"].items()) or "(preset)"
            lines.append(f"| {e['trial']} | " + " | ".join(cells) + f" | {options} |")
        lines.append("")
    return "\n".join(lines).rstrip()


