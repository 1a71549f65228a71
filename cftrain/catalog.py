"""What the run registries declare (each mode, model, optimizer and loss with its options), readable
without importing them: the command line builds its flags and `--help` from it, so `cftrain --help`
starts without torch.

`make docs` writes `cftrain/catalog.json` from the registries, keyed by a digest of the files that
declare them; `current()` reads it while that digest still matches the sources and otherwise imports
the registries themselves (slower, never wrong). A test fails when the file is stale.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from cftrain.options import PART_KINDS, SHARED, Option

PACKAGE = Path(__file__).resolve().parent
CATALOG = PACKAGE / "catalog.json"
# the files whose classes or declarations the catalog holds (an edit anywhere here makes it stale)
SOURCES = ("options.py", "optim.py", "catalog.py", "methods", "models", "losses")
MODE_FLAGS = ("trains", "default", "in_tables", "in_curves")
KINDS = {"int": int, "float": float, "str": str, "bool": bool}


def sources_digest() -> str:
    """sha256 over the declaring files' names and bytes (a few milliseconds)."""
    digest = hashlib.sha256()
    for entry in SOURCES:
        path = PACKAGE / entry
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(PACKAGE).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Catalog:
    """{kind: {name: options}} in each registry's order, and each mode's flags (`MODE_FLAGS`)."""
    parts: dict
    modes: dict

    def part_names(self, kind: str) -> list:
        """The names registered as `kind` (modes in their tables' order, the others as registered)."""
        names = list(self.parts[kind])
        return names if kind in ("mode", "optimizer") else sorted(names)

    def owners(self) -> list:
        """(kind, name, declared options) of every method, model, optimizer and loss."""
        return [(kind, name, self.parts[kind][name]) for kind in PART_KINDS for name in self.part_names(kind)]

    def all_options(self) -> dict:
        """{name: Option}: the shared ones, then every owner's (one declaration each)."""
        found = {o.name: o for o in SHARED}
        for _, owner, options in self.owners():
            for option in options:
                if option.name in found and found[option.name] != option:
                    raise RuntimeError(f"option {option.name!r} of {owner} is declared twice, differently")
                found[option.name] = option
        return found

    def readers(self, name: str) -> dict:
        """{"mode": [...], "model": [...], ...}: who reads a non-shared option."""
        out = {kind: [] for kind in PART_KINDS}
        for kind, owner, options in self.owners():
            if any(o.name == name for o in options):
                out[kind].append(owner)
        return out

    def choices(self, option: Option) -> tuple | None:
        """The values an option allows: its declared choices, or the names of its registry."""
        return tuple(self.part_names(option.part)) if option.part is not None else option.allowed()

    def default_mode(self) -> str:
        return next(name for name, flags in self.modes.items() if flags["default"])

    def modes_where(self, flag: str) -> list:
        """The modes whose `flag` (one of `MODE_FLAGS`) is true, in tables' order."""
        return [name for name, flags in self.modes.items() if flags[flag]]

    def to_json(self) -> dict:
        return {"sources": sources_digest(), "modes": self.modes,
                "parts": {kind: {name: [_option_json(o) for o in options] for name, options in names.items()}
                          for kind, names in self.parts.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Catalog:
        parts = {kind: {name: tuple(_option(o) for o in options) for name, options in names.items()}
                 for kind, names in data["parts"].items()}
        return cls(parts, data["modes"])


def from_registries() -> Catalog:
    """The catalog of the registries themselves (imports them: torch included)."""
    from cftrain.losses import LOSSES  # noqa: PLC0415  (the registries: torch)
    from cftrain.methods import METHODS  # noqa: PLC0415
    from cftrain.models import MODELS  # noqa: PLC0415
    from cftrain.optim import OPTIMIZERS  # noqa: PLC0415

    PARTS = {"mode": METHODS, "model": MODELS, "optimizer": OPTIMIZERS, "loss": LOSSES}
    parts = {kind: {name: tuple(cls.options) for name, cls in PARTS[kind].items()} for kind in PART_KINDS}
    modes = {name: {flag: bool(getattr(cls, flag)) for flag in MODE_FLAGS} for name, cls in PARTS["mode"].items()}
    return Catalog(parts, modes)


def current() -> Catalog:
    """catalog.json while it matches the sources, else the registries' own catalog."""
    try:
        data = json.loads(CATALOG.read_text())
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("sources") == sources_digest():
        return Catalog.from_json(data)
    return from_registries()


def catalog_text() -> str:
    """catalog.json as `make docs` writes it."""
    return json.dumps(from_registries().to_json(), indent=1) + "\n"


def _option_json(option: Option) -> dict:
    data = dataclasses.asdict(option)
    data["kind"] = option.kind if isinstance(option.kind, str) else option.kind.__name__
    if callable(option.choices):
        raise RuntimeError(f"option {option.name!r}: choices must be a tuple to be catalogued")
    return data


def _option(data: dict) -> Option:
    fields = dict(data, kind=KINDS.get(data["kind"], data["kind"]))
    if fields["choices"] is not None:
        fields["choices"] = tuple(fields["choices"])
    return Option(**fields)
