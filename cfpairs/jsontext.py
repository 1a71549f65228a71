"""JSON as a careful reader takes it from elsewhere (store attributes, run files, pages): numbers
that are not JSON (NaN, Infinity), an object that gives a key twice (Python's `json` keeps the
last one silently: a duplicated key could change a table's number) and nesting deeper than
Python recurses are each refused with a ValueError naming what was found."""

from __future__ import annotations

import json


def strict_loads(text: str):
    try:
        return json.loads(text, parse_constant=_not_json, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _not_json(word: str):
    raise ValueError(f"{word} is not a JSON number")


def _unique_keys(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key[:40]!r} given twice in one object")
        out[key] = value
    return out
