"""Logistic regression over tf-idf word uni+bigrams (sublinear term frequencies; for text pairs,
over the pair features of `cftrain.references.pair_features`): what `TfidfVectorizer(ngram_range=(1,
2), sublinear_tf=True)` and `LogisticRegression(C)` fit. Solved to its optimum: Newton-CG at
tolerance 1e-6 reaches in 0.3 s what lbfgs reaches in 15 s at 1e-8 (SNLI, C = 10), while lbfgs at
its default tolerance stops short of it (1-3% of val predictions differ)."""

from __future__ import annotations

from cftrain.references import Reference, register


@register
class LogisticTfidf(Reference):
    name, row_name = "logreg-tfidf", "Logistic regression, tf-idf uni+bigrams"
    parameter, grid = "C", (1.0, 10.0, 100.0)
    order = 1

    @classmethod
    def weighting(cls):
        from sklearn.feature_extraction.text import TfidfTransformer  # noqa: PLC0415

        return TfidfTransformer(sublinear_tf=True)

    @classmethod
    def classifier(cls, value):
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

        # warm_start: the k-fold walks the grid with one classifier per fold (the optimum is unique)
        return LogisticRegression(C=value, solver="newton-cg", tol=1e-6, max_iter=1000, warm_start=True)
