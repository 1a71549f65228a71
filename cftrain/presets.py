"""Resolved run options: the options' defaults (`cftrain.options`), a task's preset over them, the
user's overrides over both; each value checked against its declaration, and an option the user
gave that the run's mode, model and optimizer do not read refused, naming who reads it."""

from __future__ import annotations

import copy
from dataclasses import asdict, field, fields, make_dataclass

from cfpairs.errors import UserError
from cftrain.options import SHARED
from cftrain.registry import all_options, readers
from cftrain.registry import problem as option_problem
from cftrain.tasks import preset
from cftrain.losses import DEFAULT
from cftrain.losses import loss_class
from cftrain.methods import default_mode
from cftrain.methods import method
from cftrain.models import check_model
from cftrain.models import model_class
from cftrain.optim import optimizer_spec
from cftrain.vectors import check_embeddings

SHARED_NAMES = tuple(o.name for o in SHARED)


class _ConfigMethods:
    """`RunConfig`: the shared options as fields, and `extra`, the options the run's method, model and
    optimizer declare, readable as attributes too (`config.gs_weight` in a GS run)."""

    def __getattr__(self, name):
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__} has no option {name!r} (not read by this run)")

    def get(self, name: str, default=None):
        return getattr(self, name) if name in SHARED_NAMES or name in self.extra else default

    def to_dict(self) -> dict:
        values = asdict(self)
        return {**{k: v for k, v in values.items() if k != "extra"}, **values["extra"]}

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """A config back from config.json: shared fields, and every other declared option as extra."""
        known = all_options()
        shared = {k: v for k, v in values.items() if k in SHARED_NAMES}
        extra = {k: v for k, v in values.items() if k in known and k not in SHARED_NAMES}
        return cls(**shared, extra=extra)


RunConfig = make_dataclass(
    "RunConfig",
    [(o.name, object, field(default_factory=lambda o=o: copy.deepcopy(o.default))) for o in SHARED]
    + [("extra", dict, field(default_factory=dict))],
    bases=(_ConfigMethods,))
RunConfig.__module__ = __name__

def identity(config: dict) -> dict:
    """The options of a run's config.json that change its results, and the store's content digest."""
    ignore = {o.name for o in all_options().values() if not o.identity}
    ignore |= {"store", "store_signature", "store_verified", "embeddings_source", "job"}
    return {k: v for k, v in config.items() if k not in ignore}


DEFAULT_MODEL = {"text": "bow", "text_pair": "nli-bow", "vector": "mlp", "regions": "butd"}


def parts_of(values) -> dict:
    """{mode, model, optimizer, loss}: the parts a run (a config or its values) is made of."""
    get = values.get if isinstance(values, dict) else lambda k, d=None: getattr(values, k, d)
    return {"mode": get("mode") or default_mode(), "model": get("model"),
            "optimizer": get("optimizer") or all_options()["optimizer"].default, "loss": get("loss") or DEFAULT}


def part_class(kind: str, name: str):
    """The registered method, model, optimizer or loss `name` (a one-line error when unknown)."""
    return {"mode": method, "model": model_class, "optimizer": optimizer_spec, "loss": loss_class}[kind](name)


def read_by(parts: dict) -> set:
    """Names of the options a run made of these parts reads."""
    owned = [option for kind, name in parts.items() for option in part_class(kind, name).options]
    return set(SHARED_NAMES) | {o.name for o in owned}


def not_read(name: str, value, parts: dict) -> str:
    """The message for an option given to a run that does not read it."""
    option = all_options()[name]
    who = readers(name)
    for kind, chosen in parts.items():
        if who[kind]:
            return (f"{option.flag} {_shown(value)}: the {kind} {chosen} does not read it "
                    f"({'losses' if kind == 'loss' else kind + 's'} that do: {', '.join(who[kind])})")
    return f"{option.flag} {_shown(value)}: not read by this run"


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _values(task: str, input_kind: str | None, overrides: dict) -> tuple[dict, dict]:
    """(every value, the user's): preset under the user's non-None overrides; the model chosen."""
    known = all_options()
    unknown = sorted(k for k in overrides if k not in known)
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r}")
    given = {k: known[k].coerce(v) for k, v in overrides.items() if v is not None}
    values = {**preset(task), **given}
    values["model"] = values.get("model") or DEFAULT_MODEL.get(input_kind, "mlp")
    values["mode"] = parts_of(values)["mode"]
    return values, given


def resolve(task: str, input_kind: str | None = None, strict: bool = True, **overrides) -> RunConfig:
    """The run's config: defaults, the task's preset, then every non-None override. `strict`: an
    override the run does not read is an error (else it is dropped: a table gives every mode the
    same options, and only some modes read some of them)."""
    values, given = _values(task, input_kind, overrides)
    known = all_options()
    parts = parts_of(values)
    reads = read_by(parts)
    if strict:
        for name, value in given.items():
            if name not in reads:
                raise UserError(not_read(name, value, parts))
    shared = {name: values.get(name, copy.deepcopy(known[name].default)) for name in SHARED_NAMES}
    extra = {name: values.get(name, copy.deepcopy(known[name].default))
             for name in sorted(reads - set(SHARED_NAMES))}
    if extra.get("embeddings") == "none":  # the user's way past a preset's vectors: learned embeddings
        extra["embeddings"] = None
    config = RunConfig(**shared, extra=extra)
    validate(config, input_kind)
    return config


def check_some_mode_reads(task: str, input_kind: str | None, modes: list, overrides: dict) -> None:
    """For a table, sweep or curve: every option the user gave is read by at least one of its modes."""
    for name, value in overrides.items():
        if value is None:
            continue
        runs = [parts_of(_values(task, input_kind, {**overrides, "mode": mode})[0]) for mode in modes]
        if not any(name in read_by(parts) for parts in runs):
            message = not_read(name, value, runs[0])
            if len(modes) > 1 and readers(name)["mode"]:
                message = message.replace(f"the mode {runs[0]['mode']} does not read it",
                                          f"none of the modes {', '.join(modes)} reads it")
            raise UserError(message)


def validate(config: RunConfig, input_kind: str | None = None) -> dict:
    """{"mode", "model", "optimizer", "loss"}: the registered parts of a valid config (classes, the
    optimizer's spec); else a one-line error naming the first option whose value its declaration
    refuses, an unknown mode, model or optimizer, or a model that does not fit the store's input kind."""
    known = all_options()
    parts = {kind: part_class(kind, name) for kind, name in parts_of(config).items()}
    for name, value in config.to_dict().items():
        problem = option_problem(known[name], value)
        if problem:
            raise UserError(f"{known[name].flag} {_shown(value)}: {problem}")
    check_model(config.model, input_kind)
    if config.max_tokens is not None and input_kind == "vector":
        raise UserError(f"--max-tokens {config.max_tokens}: the store's inputs are vectors, with no tokens to cut")
    parts["mode"].check(config, parts["model"])
    check_embeddings(config.get("embeddings"))
    return parts


__all__ = ["RunConfig", "fields", "identity", "resolve", "validate"]  # fields: for callers
