"""Label kinds of the pair store (binary, multiclass, multilabel, soft), one class each.

A label kind knows everything that depends on how labels are stored: the example datasets
that hold them, the store's validation rules, when two rows' labels differ (pairs must
join different labels), the label counts `cfbuild inspect` shows, and the table columns of an
export. What training needs of labels (targets, loss, metric, the class GS supervises) is
`cftrain.labels`. Adding a label kind = one class here, registered with `@register`, and its
training half in `cftrain.labels`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from cfpairs.errors import StoreError

LABEL_KINDS: dict[str, "LabelKind"] = {}


def register(cls):
    LABEL_KINDS[cls.name] = cls()
    return cls


def label_kind(name: str) -> "LabelKind":
    if name not in LABEL_KINDS:
        raise StoreError(f"unknown label kind {name!r} (known: {', '.join(LABEL_KINDS)})")
    return LABEL_KINDS[name]


class LabelKind:
    name: str = ""
    fields: tuple = ("label",)   # example datasets holding the labels

    # ---------------------------------------------------------------- store side (numpy)

    def check(self, ex: dict, n_classes: int, where: str) -> None:
        """Raise StoreError naming the first label dataset that breaks the format."""
        raise NotImplementedError

    def differ(self, ex: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Bool per (a[i], b[i]) row pair: do the two rows carry different labels?"""
        return ex["label"][a] != ex["label"][b]

    def counts(self, read, class_names: list) -> dict:
        """{class name: rows} for `cfbuild inspect`; `read(field)` returns a whole dataset."""
        counts = np.bincount(read("label"), minlength=len(class_names))
        return {class_names[i]: int(c) for i, c in enumerate(counts)}

    def table_columns(self, ex: dict, class_names: list) -> tuple[dict, dict]:
        """Label columns of an exported table (`cfbuild export`) and their `datasets` features."""
        from datasets import ClassLabel  # noqa: PLC0415  (only exports need datasets)
        return {"label": ex["label"].tolist()}, {"label": ClassLabel(names=class_names)}


def _check_int_labels(ex: dict, high: int, where: str) -> None:
    label = ex["label"]
    if label.ndim != 1 or label.dtype.kind not in "iu":
        raise StoreError(f"{where}/label: expected (N,) integers, got {label.dtype} {label.shape}")
    if label.size and (label.min() < 0 or label.max() >= high):
        raise StoreError(f"{where}/label: values outside [0, {high})")


@register
class Binary(LabelKind):
    """label (N,) int64 in {0, 1}; trained with one logit."""
    name = "binary"

    def check(self, ex, n_classes, where):
        _check_int_labels(ex, 2, where)


@register
class Multiclass(LabelKind):
    """label (N,) int64 in [0, C); trained with C logits against one-hot targets."""
    name = "multiclass"

    def check(self, ex, n_classes, where):
        _check_int_labels(ex, n_classes, where)


@register
class Multilabel(LabelKind):
    """label (N, C) float32 of 0/1; metric: mean average precision over classes."""
    name = "multilabel"

    def check(self, ex, n_classes, where):
        label = ex["label"]
        if label.ndim != 2 or label.shape[1] != n_classes:
            raise StoreError(f"{where}/label: expected (N, {n_classes}), got {label.shape}")
        if not np.isin(label, (0.0, 1.0)).all():
            raise StoreError(f"{where}/label: multilabel values must be 0 or 1")

    def differ(self, ex, a, b):
        return np.any(ex["label"][a] != ex["label"][b], axis=1)

    def counts(self, read, class_names):
        counts = read("label").sum(0)
        top = np.argsort(-counts, kind="stable")[:10]
        return {class_names[i]: int(counts[i]) for i in top}

    def table_columns(self, ex, class_names):
        from datasets import List, Value  # noqa: PLC0415
        return {"label": ex["label"].tolist()}, {"label": List(Value("float32"))}  # multi-hot over class_names


@register
class Soft(LabelKind):
    """label_index (N, K) int32 + label_score (N, K) float32 (padding -1 / 0); VQA accuracy."""
    name = "soft"
    fields = ("label_index", "label_score")

    def check(self, ex, n_classes, where):
        idx, score = ex["label_index"], ex["label_score"]
        if idx.ndim != 2 or idx.shape != score.shape:
            raise StoreError(f"{where}/label_index and label_score: shapes {idx.shape} and {score.shape} "
                             "must agree (N, K)")
        if idx.size and (idx.min() < -1 or idx.max() >= n_classes):
            raise StoreError(f"{where}/label_index: values outside [-1, {n_classes})")
        if not (np.isfinite(score).all() and (score >= 0).all() and (score <= 1).all()):
            raise StoreError(f"{where}/label_score: scores must lie in [0, 1]")
        if np.any((idx < 0) & (score != 0)):
            raise StoreError(f"{where}/label_score: padding entries (index -1) must score 0")

    def differ(self, ex, a, b):
        """Compare {answer: score} maps, ignoring padding and zero scores."""
        index, score = ex["label_index"], ex["label_score"]

        def canonical(rows):
            idx = np.where(score[rows] > 0, index[rows], -1)
            order = np.argsort(idx, axis=1, kind="stable")
            sc = np.where(idx >= 0, score[rows], 0)
            return np.take_along_axis(idx, order, 1), np.take_along_axis(sc, order, 1)

        (ia, sa), (ib, sb) = canonical(a), canonical(b)
        return np.any(ia != ib, axis=1) | np.any(sa != sb, axis=1)

    def counts(self, read, class_names):
        index, score = read("label_index"), read("label_score")
        best = np.where(score.max(1) > 0, index[np.arange(len(index)), score.argmax(1)], -1)
        counts = Counter(best.tolist())
        return {("(empty)" if k < 0 else class_names[k]): v for k, v in counts.most_common(10)}

    def table_columns(self, ex, class_names):
        from datasets import ClassLabel, List, Value  # noqa: PLC0415
        keep = ex["label_index"] >= 0  # padding left out
        cols = {"label_index": [row[k].tolist() for row, k in zip(ex["label_index"], keep)],
                "label_score": [row[k].tolist() for row, k in zip(ex["label_score"], keep)]}
        return cols, {"label_index": List(ClassLabel(names=class_names)), "label_score": List(Value("float32"))}

