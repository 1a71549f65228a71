"""A planned run as a command line: `cftrain run STORE --out RUN --mode M --<option> VALUE ...` with
every option of its resolved config (those without a flag on the campaign commands too: folds,
fold, fold_seed, fraction_seed), and the campaign's labels for it (`--job`), so the command trains
exactly the run the campaign planned (tests/test_launchers.py parses each back). What a launcher
that starts runs as commands needs (`cftrain.launchers.command`), and what a user reruns by hand."""

from __future__ import annotations

import json
import shlex
import sys

from cftrain.registry import all_options


def option_arguments(config) -> list:
    """[--flag, value, ...] of every option the config holds (None: left out, the default)."""
    values, options, out = config.to_dict(), all_options(), []
    for name, value in values.items():
        option = options.get(name)
        if option is None or name == "mode" or value is None:
            continue
        if option.kind is bool:
            out.append(option.flag if value else f"--no-{option.flag[2:]}")
        elif isinstance(value, (list, tuple)):
            if value:
                out += [option.flag, ",".join(map(str, value))]
        else:
            out += [option.flag, repr(value) if isinstance(value, float) else str(value)]
    return out


def run_arguments(store, out, config, labels: dict | None = None) -> list:
    """The arguments of `cftrain run` that train `config` on `store` into `out`."""
    args = ["run", str(store), "--out", str(out), "--mode", config.mode, *option_arguments(config)]
    return args + (["--job", json.dumps(labels, sort_keys=True, allow_nan=False)] if labels else [])


def run_command(store, out, config, labels: dict | None = None, program: list | None = None) -> list:
    """The whole command: `program` (default: this Python's `-m cftrain --quiet`) and its arguments."""
    return [*(program or [sys.executable, "-m", "cftrain", "--quiet"]), *run_arguments(store, out, config, labels)]


def shown(command: list) -> str:
    return " ".join(shlex.quote(part) for part in command)
