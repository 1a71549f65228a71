"""Builders behind one protocol (in the spirit of Hugging Face `datasets` builders).

A builder declares its name, its options (a dataclass whose fields carry their help, range and
whether they name input files: `option(...)`), the source manifest its files are checked against,
and the splits it yields; `build(options, driver)` reads its sources and writes through the
driver. The driver does the rest, the same way for every builder: the output checks before any
work (the options' input paths are never outputs), the provenance (`driver.ledger(root)` checks
files against the manifest; `driver.sources` goes into the store), the writer (`driver.writer(...)`
fills the build record: command, every option, version) and the report (`driver.report`, stored in
the store and printed). `cfbuild <name>` commands are generated from the options (`cli.cfbuild`).

A new source is one module in `cfbuild/builders/` (its reader in `cfbuild/sources/` when the format
is new); every module there is imported, so `@register` makes it a command.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

from cfpairs import __version__
from cfpairs.errors import UserError
from cfpairs.outputs import check_output
from cfpairs.writer import StoreWriter
from cfbuild.labels import ALLOW, ALLOW_HELP
from cfbuild.manifest import SourceLedger
from cfbuild.provenance import with_terms

BUILDERS: dict[str, "Builder"] = {}
SEED_MAX = 2 ** 32 - 1


def register(cls):
    BUILDERS[cls.name] = cls()
    return cls


def builder(name: str) -> "Builder":
    if name not in BUILDERS:
        _discover()
    if name not in BUILDERS:
        raise UserError(f"unknown builder {name!r} (choose from {', '.join(sorted(BUILDERS))})")
    return BUILDERS[name]


def option(default=dataclasses.MISSING, *, help: str, low=None, high=None, choices=None, inputs: str | None = None,
           multiple: bool = False, parse=None, flag: str | None = None, cli: bool = True, argument: bool = False):
    """A builder option: `inputs` "file" or "dir" when it names input paths (checked to exist, never
    an output), `multiple` for a repeatable one, `parse` a function from the command line's text,
    `low`/`high`/`choices` its range (checked at the command line and by `Builder.check`), `argument`
    a positional argument of the command."""
    metadata = {"help": help, "low": low, "high": high, "choices": choices, "inputs": inputs, "multiple": multiple,
                "parse": parse, "flag": flag, "cli": cli, "argument": argument}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fields(options_class) -> list:
    return [f for f in dataclasses.fields(options_class) if f.metadata.get("cli", True)]


@dataclasses.dataclass(kw_only=True)
class TextOptions:
    """What every text builder takes, declared once with one default each (a builder's Options
    inherits it; `Driver.text` resolves it): the task, the tokens kept, the vocabulary's size, and
    what the label checks accept (`cfbuild.labels`)."""
    task: str | None = option(None, help="The store's task name [default: the builder's; with --vocab-from or an "
                                          "exported store: theirs].")
    max_tokens: int | None = option(None, help="Tokens kept per text, 0 for all [default: all, padded to the "
                                                "longest; with --vocab-from or an exported store: theirs].", low=0)
    vocab_size: int | None = option(None, help="Most frequent training tokens kept, besides padding and unknown "
                                                "[default: 20000; an exported store's own].", low=1)
    allow: list = option([], help=ALLOW_HELP, multiple=True, choices=ALLOW)


@dataclasses.dataclass(kw_only=True)
class Provenance:
    """What a builder reading a user's own files takes to state their terms (`cfbuild.provenance`)."""
    license: str | None = option(None, help="The licence of these files (an SPDX id such as cc-by-4.0, or words), "
                                            "recorded with each source and stated by cfbuild export [default: "
                                            "unknown].")
    citation: str | None = option(None, help="How to cite these files, recorded with each source and stated by "
                                             "cfbuild export [default: unknown].")


@dataclasses.dataclass(kw_only=True)
class SplitFiles(Provenance):
    """Builders that read one table per split: the files declared once, mapped to splits by the driver."""
    file: Path = option(help="Training rows (.csv, .tsv, .jsonl, .parquet).", inputs="file")
    file_val: Path | None = option(None, help="Val rows, in the same layout.", inputs="file")
    file_test: Path | None = option(None, help="Test rows, in the same layout.", inputs="file")

    def split_files(self) -> dict:
        """{split: path} of the files given (train first)."""
        found = {"train": self.file, "val": self.file_val, "test": self.file_test}
        return {split: Path(path) for split, path in found.items() if path}


@dataclasses.dataclass(frozen=True)
class Text:
    """A text build's resolved settings."""
    task: str
    max_tokens: int
    vocab_size: int
    allow: tuple


class Builder:
    name = ""
    summary = ""            # the command's first help line
    example = ""            # an example command line
    Options = None          # a dataclass of `option(...)` fields
    manifest: str | None = None  # data_manifests/<manifest>.json: the files its sources must match
    splits: tuple = ()      # the splits it can yield (a split whose files are absent is skipped, said)

    def inputs(self, options) -> list:
        """Every input path the options name (files and folders the output must not touch)."""
        found = []
        for f in fields(self.Options):
            if f.metadata.get("inputs"):
                value = getattr(options, f.name)
                found += [Path(v) for v in (value if isinstance(value, (list, tuple)) else [value]) if v]
        return found + [Path(p) for p in self.extra_inputs(options)]

    def extra_inputs(self, options) -> list:
        """Inputs the options name in other forms (a local file given as a hub name or a path)."""
        return []

    def check(self, options) -> None:
        """Relations between options, before any work (a UserError names the options)."""
        for f in dataclasses.fields(self.Options):
            value, meta = getattr(options, f.name), f.metadata
            flag = meta.get("flag") or "--" + f.name.replace("_", "-")
            if meta.get("multiple") and f.default is dataclasses.MISSING and \
                    f.default_factory is dataclasses.MISSING and not value:
                raise UserError(f"{flag} is required (give it once per file)")
            if value is None or isinstance(value, (bool, list, tuple)):
                continue
            if meta.get("choices") and value not in meta["choices"]:
                raise UserError(f"{flag} {value}: choose from {', '.join(meta['choices'])}")
            if meta.get("low") is not None and value < meta["low"]:
                raise UserError(f"{flag} {value}: must be >= {meta['low']}")
            if meta.get("high") is not None and value > meta["high"]:
                raise UserError(f"{flag} {value}: must be <= {meta['high']}")

    def build(self, options, driver: "Driver") -> None:
        raise NotImplementedError


class Driver:
    """What every builder shares: the output, the build record, provenance and the report."""

    def __init__(self, builder: Builder, options, out, force: bool = False):
        self.builder, self.options, self.out, self.force = builder, options, Path(out), force
        self.report: dict = {}
        self.sources: list = []
        self.settings: dict = {}  # a text build's resolved task, max tokens and vocabulary size (`text`)

    def ledger(self, root, allow_unverified: bool = False):
        """The source ledger of this builder's manifest: `check(relpath)` pins a file (sha256, size)."""

        ledger = SourceLedger(self.builder.manifest, root, allow_unverified)
        ledger.entries = self.sources  # the store's `sources` fill as files are checked
        return ledger

    def text(self, reference: dict | None = None) -> Text:
        """The text settings of this build: the options given, else those of `reference` (the build
        parameters and task of a store the build follows: --vocab-from, an exported store), else the
        defaults (the builder's task name, every token, 20000 words)."""
        o, reference = self.options, reference or {}
        given = {name: getattr(o, name, None) for name in ("task", "max_tokens", "vocab_size")}
        text = Text(task=given["task"] or reference.get("task") or self.builder.name,
                    max_tokens=given["max_tokens"] if given["max_tokens"] is not None else
                    reference.get("max_tokens") or 0,
                    vocab_size=given["vocab_size"] if given["vocab_size"] is not None else
                    reference.get("vocab_size") or 20000, allow=tuple(getattr(o, "allow", ())))
        self.settings = {"task": text.task, "max_tokens": text.max_tokens, "vocab_size": text.vocab_size}
        return text

    def parameters(self) -> dict:
        values = dataclasses.asdict(self.options)
        return {k: (str(v) if isinstance(v, Path) else [str(x) if isinstance(x, Path) else x for x in v]
                    if isinstance(v, (list, tuple)) else v) for k, v in values.items()}

    def writer(self, *, task: str, input_kind: str, label_kind: str, class_names, sources=None) -> StoreWriter:
        """The store's writer: its build record (command, every option, version) and, at commit, the report."""
        build = {"command": f"cfbuild {self.builder.name}", "parameters": self.parameters(), "version": __version__,
                 "builder_sha256": builder_source_sha256(self.builder), **({"settings": self.settings}
                                                                            if self.settings else {})}
        return _ReportingWriter(self, self.out, task=task, input_kind=input_kind, label_kind=label_kind,
                                class_names=class_names, build=build,
                                sources=self.sources if sources is None else sources, force=self.force,
                                inputs=self.builder.inputs(self.options))


class _ReportingWriter(StoreWriter):
    """A StoreWriter that stores its driver's sources and report just before it commits (a builder
    adds to them as it reads: feature files are described only once read)."""

    def __init__(self, driver: Driver, *args, **kwargs):
        self.driver = driver
        super().__init__(*args, **kwargs)

    def commit(self) -> None:
        if self.h5 is not None:
            o = self.driver.options  # each source's licence and citation: its manifest's, else the options'
            license, citation = getattr(self.driver, "terms", None) or (getattr(o, "license", None),
                                                                        getattr(o, "citation", None))
            sources = with_terms(self.driver.sources, license, citation)
            self.h5.attrs["sources"] = json.dumps(sources, sort_keys=True, allow_nan=False)
            if self.driver.report:
                self.set_json_attr("report", self.driver.report)
        super().commit()


def reference_of(build: dict, task: str | None) -> dict:
    """The text settings a store was built with (its build record: the options given, then what they
    resolved to), for a build that follows it (--vocab-from, cfbuild import)."""
    build = build if isinstance(build, dict) else {}
    return {**(build.get("parameters") or {}), **(build.get("settings") or {}), "task": task}


def builder_source_sha256(builder: Builder) -> str:
    """sha256 of the module that defines the builder: two stores built by the same version from
    edited builder code are told apart."""
    return hashlib.sha256(Path(inspect.getsourcefile(type(builder))).read_bytes()).hexdigest()


def run_builder(name: str, out, force: bool = False, **values) -> dict:
    """Build store `out` with builder `name` and its options (`values` by field name); returns the
    report. Every check comes first: the options, then the output against the options' inputs."""
    chosen = builder(name)
    try:
        options = chosen.Options(**values)
    except TypeError as exc:
        raise UserError(f"cfbuild {name}: {exc}") from None
    chosen.check(options)
    check_output(out, "store", force, inputs=chosen.inputs(options))  # before any work
    driver = Driver(chosen, options, out, force)
    chosen.build(options, driver)
    return driver.report


def _discover() -> None:
    """Import every builder module (each registers its builders)."""
    from cfbuild import builders  # noqa: PLC0415

    for info in sorted(pkgutil.iter_modules(builders.__path__), key=lambda i: i.name):
        importlib.import_module(f"{builders.__name__}.{info.name}")


def all_builders() -> dict:
    """Every builder, each module of `cfbuild/builders/` imported once (a direct import of one of
    them must not hide the others)."""
    _discover()
    return dict(sorted(BUILDERS.items()))
