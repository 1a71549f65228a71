"""Reference rows: textbook models fitted with scikit-learn on a store's own texts, one class each
behind a registry, shown in every text table as their own block (`cftrain.reference_rows` fits,
scores and keeps them). A reference says how it turns texts into features (`vectorizer`, for a
text store and for a text-pair store) and which classifier it fits for each value of its one
regularisation parameter (`classifier`, `grid`); the value is chosen by k-fold on train.

scikit-learn is imported only here and only when a table fits references (`pip install
'.[train]'` brings it), so `cftrain --help` never loads it. Every module of this package is
imported with it, so a new reference is one new file (`docs/EXTENDING.md`).
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from cfpairs.errors import UserError

REFERENCES: dict[str, type] = {}
WORDS = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern, lowercased texts
PAIR_SEPARATOR = "\x1f"               # a text pair reaches the vectorizer as premise + this + hypothesis


def register(cls):
    REFERENCES[cls.name] = cls
    ordered = sorted(REFERENCES.items(), key=lambda item: item[1].order)
    REFERENCES.clear()
    REFERENCES.update(ordered)
    return cls


def reference(name: str) -> type:
    if name not in REFERENCES:
        raise UserError(f"unknown reference {name!r} (choose from {', '.join(REFERENCES)})")
    return REFERENCES[name]


class Reference:
    """A textbook model: features of the store's texts, a classifier per value of `parameter`."""
    name = ""              # its folder under DIR/reference/ and its key in table.json
    row_name = ""          # its row in tables
    parameter = ""         # the regularisation parameter k-fold chooses
    grid: tuple = ()       # the values tried, in order (the first of equal scores wins)
    order = 50.0

    @classmethod
    def vectorizer(cls, input_kind: str):
        """A scikit-learn vectorizer of the texts (`input_kind` text) or of the joined pairs (text_pair)."""
        raise NotImplementedError

    @classmethod
    def classifier(cls, value):
        """The scikit-learn classifier with `parameter` = value."""
        raise NotImplementedError


def words(text: str) -> list:
    return WORDS.findall(text.lower())


def pair_features(joined: str) -> list:
    """A premise and hypothesis's features for the text-pair references: the premise's words, the
    hypothesis's words and bigrams, and cross features: each hypothesis word new to the premise
    and each shared with it (the classic lexical NLI baseline's features)."""
    premise, _, hypothesis = joined.partition(PAIR_SEPARATOR)
    p, h = words(premise), words(hypothesis)
    seen = set(p)
    return ([f"p:{w}" for w in p] + [f"h:{w}" for w in h] + [f"h:{a}_{b}" for a, b in zip(h, h[1:])] +
            [f"{'shared' if w in seen else 'new'}:{w}" for w in h])


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")


_discover()

__all__ = ["PAIR_SEPARATOR", "REFERENCES", "Reference", "pair_features", "reference", "register", "words"]
