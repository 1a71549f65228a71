"""The registries' options: every option a run can take (the shared declarations of
`cftrain.options` and what each method, model, optimizer and loss declares), who reads each, the
names each registry holds, and docs/OPTIONS.md. Importing it imports the registries; the options'
declarations import none of them."""

from __future__ import annotations

import json

from cftrain.catalog import from_registries
from cftrain.losses import LOSSES
from cftrain.methods import METHODS
from cftrain.models import MODELS
from cftrain.optim import OPTIMIZERS

PARTS = {"mode": METHODS, "model": MODELS, "optimizer": OPTIMIZERS, "loss": LOSSES}


def _declared():
    """The registries' catalog (`cftrain.catalog`): the option lookups below are its."""
    return from_registries()


def part_names(kind: str) -> list:
    """The names registered as `kind` (modes in their tables' order, the others as registered)."""
    return _declared().part_names(kind)


def owners() -> list:
    """(kind, name, declared options) of every method, model, optimizer and loss."""
    return _declared().owners()


def all_options() -> dict:
    """{name: Option}: the shared ones, then every owner's (one declaration each)."""
    return _declared().all_options()


def readers(name: str) -> dict:
    """{"mode": [...], "model": [...], "optimizer": [...], "loss": [...]}: who reads a non-shared option."""
    return _declared().readers(name)


def choices(option) -> tuple | None:
    """The values an option allows: its declared choices, or the names of its registry."""
    return _declared().choices(option)


def problem(option, value) -> str | None:
    """None when `value` is valid for `option` (a registered name for a part option), else what it must be."""
    found = option.problem(value)
    if found is None and option.part is not None and value is not None and value not in PARTS[option.part]:
        return f"must be one of {', '.join(part_names(option.part))}"
    return found


def markdown() -> str:
    """docs/OPTIONS.md: every option, who reads it, its default and range."""
    lines = ["# cftrain options", "",
             "Generated from the declarations (`make docs`); a test fails when",
             "this page is stale. Options every method shares come first; the others are read only by the",
             "modes, models, optimizers or losses named, and a run refuses one that none of its parts reads.",
             "A task's table (`cftrain/tasks.py`) sets its own values and sweep ranges over these.", "",
             "| option | read by | type | default | range or choices | sweep | changes results | what |",
             "|---|---|---|---|---|---|---|---|"]
    for option in all_options().values():
        if not option.cli:
            continue
        who = readers(option.name)
        read_by = "; ".join(f"{k} {', '.join(v)}" for k, v in who.items() if v) or "every run"
        kind = option.kind if isinstance(option.kind, str) else option.kind.__name__
        sweep = "" if option.sweep is None else f"`{json.dumps(option.sweep)}`"
        allowed = choices(option)
        values = f"one of {', '.join(map(str, allowed))}" if allowed else option.must().removeprefix("must be ")
        lines.append(f"| `{option.flag}` | {read_by} | {kind} | {_shown(option.default)} | {values} | {sweep} | "
                     f"{'yes' if option.identity else 'no'} | {option.help} |")
    return "\n".join(lines) + "\n"


def _shown(value) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)
