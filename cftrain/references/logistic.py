"""Logistic regression over tf-idf word uni+bigrams (sublinear term frequencies; for text pairs,
over the pair features of `cftrain.references.pair_features`)."""

from __future__ import annotations

from cftrain.references import Reference, pair_features, register


@register
class LogisticTfidf(Reference):
    name, row_name = "logreg-tfidf", "Logistic regression, tf-idf uni+bigrams"
    parameter, grid = "C", (1.0, 10.0, 100.0)
    order = 1

    @classmethod
    def vectorizer(cls, input_kind):
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415

        if input_kind == "text_pair":
            return TfidfVectorizer(analyzer=pair_features, sublinear_tf=True)
        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)

    @classmethod
    def classifier(cls, value):
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

        return LogisticRegression(C=value, max_iter=2000)
