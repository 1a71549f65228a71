"""What every registry of the project shares (cfpairs holds it: cfbuild's backbones and cftrain's
methods, columns, launchers and references use it, and cfbuild must not import cftrain): a `register` decorator that keeps a table of classes
in their declared `order`, and the discovery that imports every module of a registry's package (so a
new method, model, column, launcher or backbone is one new file)."""

from __future__ import annotations

import importlib
import pkgutil


def ordered_register(table: dict):
    """A class decorator adding a class to `table` under its `name`, the table kept in `order`."""
    def register(cls):
        table[cls.name] = cls
        ordered = sorted(table.items(), key=lambda item: getattr(item[1], "order", 50.0))
        table.clear()
        table.update(ordered)
        return cls
    return register


def discover(package: str, path) -> None:
    """Import every module of `package` (found on `path`, its `__path__`): each registers its classes."""
    for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
        importlib.import_module(f"{package}.{info.name}")
