"""Sweep spaces: {option: spec} from JSON or TOML files or the defaults (each option's own range,
`Option.sweep`, under the task's, `cftrain.tasks`), checked against each option's declaration
(`cftrain.options`), and the seeded draw of a trial. No torch here: spaces are read and checked
before any training starts.

A spec is a list of values (one drawn), {"uniform": [a, b]}, {"log_uniform": [a, b]}, {"int": [a, b]}
(inclusive) or {"log_scale": [a, b]} (the preset's value times a log-uniform factor in [a, b]).
Each trial draws each option from its own generator, seeded by (sweep seed, trial, option name):
adding a mode, a model or an option to a sweep never changes what an existing trial draws.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from cfpairs.errors import UserError
from cftrain.registry import all_options
from cftrain.registry import problem as option_problem
from cftrain.tasks import task_space
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
            problem = option_problem(option, option.coerce(value))
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
    own = {name: spec for name, spec in task_space(task).items() if name in readers_of_modes}
    return {**declared, **own} if own else declared


def option_generator(sweep_seed: int, trial: int, name: str) -> np.random.Generator:
    """The generator of one option's draw in one trial: seeded by (sweep seed, trial, the option's name)."""
    return np.random.default_rng([sweep_seed, trial, int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")])


def draw(space: dict, trial: int, sweep_seed: int, preset) -> dict:
    """Trial 0: {} (the preset); else one value per option, each from its own generator
    (`option_generator`), so what one option draws depends on nothing else in the space."""
    if trial == 0:
        return {}
    values = {}
    for key in sorted(space):
        spec, rng = space[key], option_generator(sweep_seed, trial, key)
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
            base = preset.get(key) if kind == "log_scale" else 1.0
            if base is None:  # a mode that does not read it (augmentation and the GS weight): left out
                continue
            values[key] = value * base
        if isinstance(values[key], float):
            values[key] = float(f"{values[key]:.4g}")  # readable options; the draw stays reproducible
    return values
