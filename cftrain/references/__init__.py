"""Reference rows: textbook models fitted with scikit-learn on a store's own texts, one class each
behind a registry, shown in every text table as their own block (`cftrain.reference_rows` fits,
scores and keeps them). Every reference reads the same counts of the texts' word n-grams
(`counter`: words and bigrams of a text; for a text pair, `pair_features`), counted once for all
of them; a reference says how it weighs the counts (`weighting`: binary presence, tf-idf...) and
which classifier it fits for each value of its one regularisation parameter (`classifier`,
`grid`); the value is chosen by k-fold on train.

scikit-learn is imported only here and only when a table fits references (`pip install
'.[train]'` brings it), so `cftrain --help` never loads it. Every module of this package is
imported with it, so a new reference is one new file (`docs/EXTENDING.md`).
"""

from __future__ import annotations

import re

from cfpairs.errors import UserError
from cfpairs.registering import discover, ordered_register

REFERENCES: dict[str, type] = {}
WORDS = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern, lowercased texts
PAIR_SEPARATOR = "\x1f"               # a text pair reaches the vectorizer as premise + this + hypothesis


register = ordered_register(REFERENCES)  # the reference block's rows in `order`


def reference(name: str) -> type:
    if name not in REFERENCES:
        raise UserError(f"unknown reference {name!r} (choose from {', '.join(REFERENCES)})")
    return REFERENCES[name]


class Reference:
    """A textbook model: a weighting of the texts' n-gram counts, a classifier per value of `parameter`."""
    name = ""              # its folder under DIR/reference/ and its key in table.json
    row_name = ""          # its row in tables
    parameter = ""         # the regularisation parameter k-fold chooses
    grid: tuple = ()       # the values tried, in order (the first of equal scores wins)
    order = 50.0

    @classmethod
    def weighting(cls):
        """A scikit-learn transformer of the counts (fitted on the training rows' counts)."""
        raise NotImplementedError

    @classmethod
    def classifier(cls, value):
        """The scikit-learn classifier with `parameter` = value."""
        raise NotImplementedError


def counter(input_kind: str):
    """The counts every reference reads: a text's words and word bigrams (scikit-learn's
    `CountVectorizer(ngram_range=(1, 2))`: lowercased words of two letters or more), or a text
    pair's `pair_features` (a pair reaches it as premise, `PAIR_SEPARATOR`, hypothesis)."""
    from sklearn.feature_extraction.text import CountVectorizer  # noqa: PLC0415

    if input_kind == "text_pair":
        return CountVectorizer(analyzer=pair_features)
    return CountVectorizer(ngram_range=(1, 2))


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


discover(__name__, __path__)

__all__ = ["PAIR_SEPARATOR", "REFERENCES", "Reference", "counter", "pair_features", "reference", "register", "words"]
