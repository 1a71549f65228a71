"""Multinomial Naive Bayes over binary word uni+bigram counts (Wang & Manning 2012's baseline for
sentiment; for text pairs, over the pair features of `cftrain.references.pair_features`): what
`CountVectorizer(ngram_range=(1, 2), binary=True)` and `MultinomialNB(alpha)` fit."""

from __future__ import annotations

from cftrain.references import Reference, register


@register
class NaiveBayes(Reference):
    name, row_name = "nb-bigrams", "Naive Bayes, binary uni+bigrams"
    parameter, grid = "alpha", (0.1, 0.3, 1.0, 3.0)
    order = 0

    @classmethod
    def weighting(cls):
        from sklearn.preprocessing import Binarizer  # noqa: PLC0415

        return Binarizer()  # counts > 0 -> 1: each n-gram present or not

    @classmethod
    def classifier(cls, value):
        from sklearn.naive_bayes import MultinomialNB  # noqa: PLC0415

        return MultinomialNB(alpha=value)
