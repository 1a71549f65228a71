"""`cftrain sweep`: seeded random search over a declared space of run options (DomainBed's
`sweep` + `collect_results` ideas), resumable, selected on val only.

    DIR/<mode>/trial-<t>/seed-<s>/       an ordinary run directory per (mode, trial, seed)
    DIR/summary.json, DIR/summary.md     per mode, trials ranked by mean val over seeds (written last)
    DIR/results.jsonl                    one line per run: options, val, every split (written last)

Trial 0 is the preset itself; trial t > 0 draws every option of the space from a generator
seeded by (sweep seed, t), so a trial means the same options whatever --trials, --modes or
--seeds say, and a sweep killed and started again skips the runs already finished (the runner,
`cftrain.jobs`, compares each finished run's options with the plan's). Options a mode does not
read (the GS weight for augmentation) are left out of its trials.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError
from cfpairs.progress import Progress
from cfpairs.store import Store
from cftrain.jobs import Job, run_campaign
from cftrain.options import all_options
from cftrain.presets import RunConfig, check_some_mode_reads, read_by, resolve
from cftrain.views import sweep_view, view_files

# spec: a list (one of its values), {"uniform": [a, b]}, {"log_uniform": [a, b]}, {"int": [a, b]}
# (inclusive), {"log_scale": [a, b]} (the preset's value times a log-uniform factor in [a, b])
DEFAULT_SPACES = {  # around each task's preset; other tasks: every read option's own sweep range
    "imdb": {"lr": {"log_uniform": [2.0, 15.0]}, "eps": [1e-5, 1e-4], "gs_weight": {"log_uniform": [5.0, 50.0]},
             "embed_init": ["normal", "uniform"], "rho": [0.9, 0.95], "batch_size": [16, 32, 64]},
    "snli": {"lr": {"log_uniform": [0.3, 3.0]}, "gs_weight": {"log_uniform": [0.001, 1.0]},
             "rho": [0.9, 0.95], "batch_size": [128, 256, 512]},
}
NOT_SWEPT = ("mode", "seed", "fraction", "fraction_seed", "subsets")
KINDS = ("uniform", "log_uniform", "int", "log_scale")


def load_space(path) -> dict:
    """A space from a JSON or TOML file ({option: spec}), checked: known options, valid specs."""
    path = Path(path)
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10: the same parser as a package
                import tomli as tomllib
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
    """A spec checked against the option's declaration: its type (an integer option only from
    integers), its choices, its range; null is no value."""
    options = all_options()
    if key not in options or key in NOT_SWEPT or not options[key].cli or not options[key].identity:
        raise UserError(f"{where}: {key!r} is not an option a sweep can vary")
    option = options[key]
    if isinstance(spec, list) and spec:
        for value in spec:
            if value is None:
                raise UserError(f"{where}: {key}: null is not a value (leave the option out)")
            problem = option.problem(option.coerce(value))
            if problem:
                raise UserError(f"{where}: {key}: {value!r}: {problem}")
        return
    ok = (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS
          and isinstance(bounds := next(iter(spec.values())), list) and len(bounds) == 2
          and all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
          and bounds[0] <= bounds[1])
    if not ok or (next(iter(spec)) in ("log_uniform", "log_scale") and bounds[0] <= 0):
        raise UserError(f"{where}: {key}: a spec is a non-empty list of values or one of "
                        f"{', '.join(KINDS)} with [low, high] (low > 0 for log ones), got {spec!r}")
    kind = next(iter(spec))
    numeric = {int: ("int",), float: KINDS}.get(option.kind, ())
    if kind not in numeric:
        allowed = f"a list, or {' or '.join(numeric)} ranges" if numeric else "a list of values"
        raise UserError(f"{where}: {key}: a {kind} range draws {'floats' if kind != 'int' else 'integers'}; "
                        f"{option.flag} takes {allowed}")
    if kind != "log_scale":
        for bound in bounds:
            problem = option.problem(option.coerce(int(bound) if kind == "int" else float(bound)))
            if problem:
                raise UserError(f"{where}: {key}: bound {bound}: {problem}")


def default_space(task: str, readers_of_modes: set) -> dict:
    """The task's own space (the options the modes read), and every other option the modes read
    with a sweep range declared (a new method's own options are swept without a space file)."""
    declared = {name: option.sweep for name, option in all_options().items()
                if option.sweep is not None and name in readers_of_modes}
    own = {name: spec for name, spec in DEFAULT_SPACES.get(task, {}).items() if name in readers_of_modes}
    return {**declared, **own} if own else declared


def draw(space: dict, trial: int, sweep_seed: int, preset: RunConfig) -> dict:
    """Trial 0: {} (the preset); else one value per option, from a generator seeded by (seed, trial)."""
    if trial == 0:
        return {}
    rng = np.random.default_rng([sweep_seed, trial])
    values = {}
    for key in sorted(space):
        spec = space[key]
        if isinstance(spec, list):
            values[key] = all_options()[key].coerce(spec[int(rng.integers(len(spec)))])
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
               sweep_seed: int, fixed: dict) -> list:
    """One job per (mode, trial, seed), every config checked up front."""
    jobs = []
    with Progress(len(modes) * trials, f"{task} sweep: planning", unit="trials") as bar:
        for mode in modes:
            preset = resolve(task, input_kind, strict=False, **{**fixed, "mode": mode})
            reads = read_by(mode, preset.model, preset.optimizer)
            for trial in range(trials):
                options = {k: v for k, v in draw(space, trial, sweep_seed, preset).items() if k in reads}
                for seed in seeds:
                    config = resolve(task, input_kind, strict=False,
                                     **{**fixed, **options, "mode": mode, "seed": seed})
                    jobs.append(Job(f"{mode}/trial-{trial}/seed-{seed}", config,
                                    {"mode": mode, "trial": trial, "seed": seed, "options": options}))
                bar.update()
    return jobs


def run_sweep(store_path, out_dir, modes: list, trials: int, seeds: list, space_path=None, sweep_seed: int = 0,
              jobs: int | None = None, top: int = 5, force: bool = False, verify: bool = False,
              **fixed) -> dict:
    """Run every (mode, trial, seed) not yet finished in out_dir, then write the summary."""
    with Store(store_path) as store:
        task, input_kind = store.task, store.input_kind
    fixed = {k: v for k, v in fixed.items() if v is not None}
    check_some_mode_reads(task, input_kind, modes, fixed)
    reads = set().union(*(read_by(m, p.model, p.optimizer) for m in modes
                          for p in [resolve(task, input_kind, strict=False, **{**fixed, "mode": m})]))
    space = load_space(space_path) if space_path else default_space(task, reads)
    for key, spec in space.items():
        check_spec(key, spec, space_path or "the default space")
    unread = sorted(set(space) - reads)
    if unread:
        raise UserError(f"{space_path or 'the default space'}: {unread[0]}: none of the modes "
                        f"{', '.join(modes)} reads it")
    planned = plan_sweep(task, input_kind, modes, trials, seeds, space, sweep_seed, fixed)
    records = run_campaign("sweep", store_path, out_dir, planned, jobs, force, verify, desc=f"{task} sweep",
                           render=lambda rs: view_files("sweep", rs, top=top)[0])
    return sweep_view(records, top)
