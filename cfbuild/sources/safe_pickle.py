"""Pickles are untrusted input: a restricted unpickler that builds data, never runs code.

Admitted: the built-in containers and numbers (handled by the pickle machine
itself, no lookup needed), `set`/`frozenset`, and what numpy needs to rebuild
arrays, dtypes and scalars. Any other global a pickle names (a function, a class,
`os.system`...) is refused before it is ever looked up.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from cfpairs.errors import UserError

_ALLOWED = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"), ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # protocol 2 stores array bytes as latin-1 text
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}: only plain containers, "
                                         "numbers and numpy arrays are accepted")
        return super().find_class(module, name)


def load_pickle(path) -> object:
    """The object in the pickle at `path`; anything but plain data is a UserError naming the file."""
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            # latin1: Python 2 pickles (e.g. bottom-up's imgid2idx) carry numpy bytes as str
            return _DataOnlyUnpickler(fh, encoding="latin1").load()
        except pickle.UnpicklingError as exc:
            raise UserError(f"{path}: {exc}") from None
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as exc:
            raise UserError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
