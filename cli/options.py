"""Click options generated from the run options' declarations (`cftrain.options`): one declaration
gives the flag, its type and range, its help (with who reads it) and the validation."""

from __future__ import annotations

import click

from cftrain.catalog import current
from cftrain.options import Option
from cli.common import FiniteFloat

DECLARED = current()  # the registries' declarations, without importing them (cftrain/catalog.json)


def _list_callback(option: Option):
    def parse(ctx, param, value):
        if value is None:
            return None
        items = [v.strip() for v in value.split(",") if v.strip()]
        if option.kind == "widths":
            try:
                items = [int(v) for v in items]
            except ValueError:
                raise click.BadParameter(f"{value}: {option.must()}") from None
        problem = option.problem(items)
        if problem:
            raise click.BadParameter(f"{value}: {problem}")
        return items
    return parse


def _click_type(option: Option):
    allowed = DECLARED.choices(option)
    if allowed is not None:
        return click.Choice([str(c) for c in allowed])
    if option.kind is int:
        return click.IntRange(option.low, option.high, min_open=option.low_open, max_open=option.high_open)
    if option.kind is float:
        return FiniteFloat(option.low, option.high, low_open=option.low_open, high_open=option.high_open)
    return str


def _help(option: Option) -> str:
    who = DECLARED.readers(option.name)
    owners = "; ".join(f"{kind}{'s' if len(names) > 1 else ''} {', '.join(names)}" for kind, names in who.items()
                       if names)
    default = option.default
    shown = "" if default is None or default == [] else \
        f" [default: {','.join(map(str, default)) if isinstance(default, list) else default}]"
    return option.help + (f" (read by {owners})" if owners else "") + shown


def click_option(option: Option):
    """The click decorator of one option (every default None: unset options come from the preset)."""
    if option.kind is bool:
        return click.option(f"{option.flag}/--no-{option.flag[2:]}", option.name, default=None, help=_help(option))
    if option.kind in ("widths", "names"):
        return click.option(option.flag, option.name, callback=_list_callback(option), help=_help(option))
    return click.option(option.flag, option.name, type=_click_type(option), default=None, help=_help(option))


def training_options(func):
    """Every run option that a command line gives (shared, methods', models', optimizers')."""
    for option in reversed([o for o in DECLARED.all_options().values() if o.cli]):
        func = click_option(option)(func)
    return func


def run_only_options(func):
    """The options a campaign sets for each of its runs (no flag on table, curve or sweep): on
    `cftrain run`, so every run a campaign plans can be written as one command (`cftrain.commands`)."""
    for option in reversed([o for o in DECLARED.all_options().values() if not o.cli and o.name != "mode"]):
        func = click_option(option)(func)
    return func
