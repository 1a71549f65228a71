"""Multinomial Naive Bayes over binary word uni+bigram counts (Wang & Manning 2012's baseline for
sentiment; for text pairs, over the pair features of `cftrain.references.pair_features`)."""

from __future__ import annotations

from cftrain.references import Reference, pair_features, register


@register
class NaiveBayes(Reference):
    name, row_name = "nb-bigrams", "Naive Bayes, binary uni+bigrams"
    parameter, grid = "alpha", (0.1, 0.3, 1.0, 3.0)
    order = 0

    @classmethod
    def vectorizer(cls, input_kind):
        from sklearn.feature_extraction.text import CountVectorizer  # noqa: PLC0415

        if input_kind == "text_pair":
            return CountVectorizer(analyzer=pair_features, binary=True)
        return CountVectorizer(ngram_range=(1, 2), binary=True)

    @classmethod
    def classifier(cls, value):
        from sklearn.naive_bayes import MultinomialNB  # noqa: PLC0415

        return MultinomialNB(alpha=value)
