"""`make docs` (`python -m cli.docs [--check]`): the pages and parts of pages that the registries
write: docs/OPTIONS.md and cftrain/catalog.json (what `--help` reads) whole, and in docs/TRAINING.md, BUILDING.md, IMAGES.md, EXTENDING.md and
CLUSTER.md the lists of modes, models, losses, columns, builder commands, backbones and launchers, between `<!-- generated: NAME -->` and `<!-- end generated -->`.
`--check` writes nothing and exits 1 naming each stale page (a test runs it)."""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
REGION = re.compile(r"(<!-- generated: (\w+) \(make docs\) -->\n)(.*?)(<!-- end generated -->)", re.S)


def _flags(options) -> str:
    return ", ".join(f"`{o.flag}`" for o in options) or "-"


def modes() -> str:
    from cftrain.methods import METHODS  # noqa: PLC0415
    lines = ["| mode | what it trains | table row | its options | its terms | learns from pairs |",
             "|---|---|---|---|---|---|"]
    for name, cls in METHODS.items():
        terms = ", ".join(cls.terms) or ("- (draws its predictions)" if not cls.trains else "-")
        what = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        lines.append(f"| `{name}`{' (default)' if cls.default else ''} | {what} | {cls.row_name} | "
                     f"{_flags(cls.options)} | {terms} | {'yes' if cls.needs_pairs else 'no'} |")
    return "\n".join(lines)


def models() -> str:
    from cftrain.models import MODELS  # noqa: PLC0415
    lines = ["| model | input kinds | its options | ensemble form |", "|---|---|---|---|"]
    for name, cls in sorted(MODELS.items()):
        form = "hand-fused" if cls.fused is not None else "generic (the fastest of vmap, members in turn, one shared table)" \
            if cls.vmappable else "members in turn"
        lines.append(f"| `{name}` | {', '.join(cls.input_kinds)} | {_flags(cls.options)} | {form} |")
    return "\n".join(lines)


def losses() -> str:
    from cftrain.losses import DEFAULT, LOSSES  # noqa: PLC0415
    lines = ["| loss | label kinds | its options |", "|---|---|---|"]
    for name, cls in sorted(LOSSES.items()):
        lines.append(f"| `{name}`{' (default)' if name == DEFAULT else ''} | {', '.join(cls.serves)} | "
                     f"{_flags(cls.options)} |")
    return "\n".join(lines)


def _synopsis(builder) -> str:
    from cfbuild.protocol import fields  # noqa: PLC0415
    hints = typing.get_type_hints(builder.Options)
    parts = []
    for field in fields(builder.Options):
        meta = field.metadata
        flag = meta.get("flag") or "--" + field.name.replace("_", "-")
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if meta.get("argument"):
            parts.append(field.name.upper())
        elif hints[field.name] is bool:
            parts.append(f"[{flag}]")
        else:
            value = "|".join(meta["choices"]) if meta.get("choices") else \
                field.name.upper() if required or default in (None, "", []) else default
            shown = f"{flag} {value}" + (" ..." if meta.get("multiple") else "")
            parts.append(shown if required else f"[{shown}]")
    return " ".join(parts)


def builders() -> str:
    from cfbuild.protocol import all_builders  # noqa: PLC0415
    lines = ["| command | what it builds |", "|---|---|"]
    for name, builder in all_builders().items():
        synopsis = _synopsis(builder).replace("|", "\\|")  # inside a table cell
        lines.append(f"| `cfbuild {name} {synopsis} --out STORE` | {builder.summary} |")
    return "\n".join(lines)


def backbones() -> str:
    from cfbuild.images.backbones import BACKBONES, DEFAULT  # noqa: PLC0415
    lines = ["| `--backbone` | weights | preprocessing | width |", "|---|---|---|---:|"]
    for name, found in BACKBONES.items():
        lines.append(f"| `{name}`{' (default)' if name == DEFAULT else ''} | {found.weights_doc} | "
                     f"{found.preprocessing_doc} | {found.width} |")
    lines.append("| any other name: a timm model (a fallback outside the registry) | timm's download, or `--weights "
                 "FILE` (timm's `pretrained_cfg_overlay`); needs `pip install '.[images-hub]'` | the model's "
                 "pretrained config | the model's |")
    return "\n".join(lines)


def columns() -> str:
    from cftrain.columns import COLUMNS  # noqa: PLC0415
    lines = ["| column | header | label kinds | better | what |", "|---|---|---|---|---|"]
    for name, cls in COLUMNS.items():
        lines.append(f"| `{name}` | {cls.header} | {', '.join(cls.label_kinds)} | {cls.better} | {cls.what} |")
    return "\n".join(lines)


def launchers() -> str:
    from cftrain.launchers import LAUNCHERS  # noqa: PLC0415
    lines = ["| `--launcher` | where each run goes | its options |", "|---|---|---|"]
    for name, cls in LAUNCHERS.items():
        what = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        lines.append(f"| `{name}`{' (default)' if cls.default else ''} | {what} | {_flags(cls.options)} |")
    return "\n".join(lines)


REGIONS = {"modes": modes, "models": models, "losses": losses, "builders": builders, "backbones": backbones,
           "columns": columns, "launchers": launchers}


def pages() -> dict:
    """{path: text as the registries write it}."""
    from cftrain.catalog import CATALOG, catalog_text  # noqa: PLC0415
    from cftrain.registry import markdown  # noqa: PLC0415
    out = {DOCS / "OPTIONS.md": markdown(), CATALOG: catalog_text()}
    for name in ("TRAINING.md", "BUILDING.md", "IMAGES.md", "EXTENDING.md", "CLUSTER.md"):
        path = DOCS / name
        out[path] = REGION.sub(lambda m: m.group(1) + REGIONS[m.group(2)]() + "\n" + m.group(4), path.read_text())
    return out


def main(argv=None) -> int:
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = []
    for path, text in pages().items():
        if not path.exists() or path.read_text() != text:
            stale.append(path)
            if not check:
                path.write_text(text)
    for path in stale:
        print(f"{'stale' if check else 'wrote'} {path.relative_to(DOCS.parent)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
