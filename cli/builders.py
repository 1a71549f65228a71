"""`cfbuild <name>` commands generated from each builder's options (`cfbuild.protocol`): one
declaration per option gives its flag, type, range, help, default and whether it names inputs."""

from __future__ import annotations

import dataclasses
import time
import typing
from pathlib import Path

import click

from cfbuild.protocol import Builder, fields, run_builder
from cli.common import FiniteFloat, InputPath


def _param(field: dataclasses.Field, kind) -> click.Parameter:
    meta = field.metadata
    flag = meta.get("flag") or "--" + field.name.replace("_", "-")
    required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    default = None if required else (field.default if field.default is not dataclasses.MISSING
                                     else field.default_factory())
    kind = typing.get_args(kind)[0] if typing.get_origin(kind) in (typing.Union, type(int | None)) else kind
    if meta.get("inputs"):
        click_type = InputPath(file_okay=meta["inputs"] == "file", dir_okay=meta["inputs"] == "dir")
    elif meta.get("choices"):
        click_type = click.Choice(list(meta["choices"]))
    elif kind is int:
        click_type = click.IntRange(meta.get("low"), meta.get("high"))
    elif kind is float:
        click_type = FiniteFloat(meta.get("low"), meta.get("high"))
    else:
        click_type = str
    callback = (lambda ctx, param, value: meta["parse"](value) if value is not None else None) \
        if meta.get("parse") else None
    if meta.get("argument"):
        return click.Argument([field.name], type=click_type, required=required)
    if kind is bool:
        return click.Option([flag, field.name], is_flag=True, default=bool(default), help=meta["help"])
    shown = default not in (None, [], ())
    return click.Option([flag, field.name], type=click_type, required=required and not meta.get("multiple"),
                        multiple=bool(meta.get("multiple")), default=default if not meta.get("multiple") else None,
                        show_default=shown, callback=callback, help=meta["help"])


def builder_command(builder: Builder) -> click.Command:
    """The click command of one builder: its options, --out and --force; prints the report."""
    hints = typing.get_type_hints(builder.Options)
    params = [_param(f, hints[f.name]) for f in fields(builder.Options)]
    params += [click.Option(["--out", "out"], required=True, type=click.Path(dir_okay=False, path_type=Path),
                            help="The store to write (.h5). Written to a temporary file, renamed when complete."),
               click.Option(["--force"], is_flag=True,
                            help="Replace an existing store written by cfbuild (never another file).")]

    def callback(out, force, **values):
        from cfbuild.report import format_report  # noqa: PLC0415

        values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}
        start = time.perf_counter()
        report = run_builder(builder.name, out, force, **values)
        if report:
            click.echo(format_report(report))
        click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.1f} s")

    doc = builder.summary + ("\n\n" + " ".join((builder.__doc__ or "").split()) if builder.__doc__ else "")
    splits = f"\n\nSplits: {', '.join(builder.splits)}." if builder.splits else ""
    example = f"\n\n\b\nExample:\n  {builder.example}" if builder.example else ""
    return click.Command(builder.name, params=params, callback=callback, help=doc + splits + example,
                         short_help=builder.summary)
