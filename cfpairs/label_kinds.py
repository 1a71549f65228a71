"""Label kinds of the pair store (binary, multiclass, multilabel, soft), one class each.

A label kind knows everything that depends on how labels are stored: the example datasets
that hold them, the store's validation rules, when two rows' labels differ (pairs must
join different labels), the label counts `cfbuild inspect` shows, and, for training, the
dense targets, the evaluation metric and the class that gradient supervision works on.

torch is imported inside the training methods only: `cfbuild` commands never need it.
Adding a label kind = one class here, registered with `@register`.
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
    metric: str = "accuracy"     # the key of the metric in metrics.json, percent
    undefined: str = "no rows"   # why `score` can be NaN (metrics.json then says so, with null)

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

    # ---------------------------------------------------------------- training side (torch)

    def targets(self, read, n_classes: int) -> tuple:
        """(targets, labels): dense (N, C) float targets (or SoftTargets) and (N,) class indices."""
        raise NotImplementedError

    def score(self, logits, targets, labels) -> float:
        """The metric in percent over these rows (NaN when undefined, e.g. no rows)."""
        if not len(labels):
            return float("nan")
        return 100.0 * float((predictions(logits) == labels).float().mean())

    def gs_weights(self, targets, edges):
        """(E, C) signs sign(y_j[c] - y_i[c]) on the supervised class of each edge (i, j), 0 elsewhere.

        The class: i's own class when it differs in j, else j's (so a VQA counterfactual
        without an answer uses its original's answer)."""
        diff = _edge_diff(targets, edges)
        y_i, y_j = targets[edges[:, 0]], targets[edges[:, 1]]
        own, other = y_i.argmax(1), y_j.argmax(1)
        differs = diff.gather(1, own[:, None]).squeeze(1) != 0
        has_own = y_i.max(1).values > 0  # an empty soft target has no class of its own
        chosen = own.where(differs & has_own, other)
        weights = diff.new_zeros(diff.shape)
        weights.scatter_(1, chosen[:, None], diff.gather(1, chosen[:, None]))
        return weights


def _edge_diff(targets, edges):
    import torch  # noqa: PLC0415  (see module docstring)
    return torch.sign(targets.index_select(0, edges[:, 1]) - targets.index_select(0, edges[:, 0]))


def predictions(logits):
    """Class index per row: the sign of a single logit, else the arg-max."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def _int_label(read):
    import torch  # noqa: PLC0415
    return torch.as_tensor(read("label"))


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

    def targets(self, read, n_classes):
        label = _int_label(read)
        return label[:, None].float(), label

    def gs_weights(self, targets, edges):
        return _edge_diff(targets, edges)  # one logit: its sign change is the supervision


@register
class Multiclass(LabelKind):
    """label (N,) int64 in [0, C); trained with C logits against one-hot targets."""
    name = "multiclass"

    def check(self, ex, n_classes, where):
        _check_int_labels(ex, n_classes, where)

    def targets(self, read, n_classes):
        import torch  # noqa: PLC0415
        label = _int_label(read)
        return torch.nn.functional.one_hot(label, n_classes).float(), label


@register
class Multilabel(LabelKind):
    """label (N, C) float32 of 0/1; metric: mean average precision over classes."""
    name = "multilabel"
    metric = "map"
    undefined = "no class has a positive row here"

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

    def targets(self, read, n_classes):
        import torch  # noqa: PLC0415
        multi = torch.as_tensor(read("label")).float()
        return multi, multi.argmax(1)

    def score(self, logits, targets, labels):
        if not len(labels):
            return float("nan")
        return mean_average_precision(logits.numpy(), targets.numpy())

    def gs_weights(self, targets, edges):
        return _edge_diff(targets, edges)  # every class that differs, folded into one signed sum


@register
class Soft(LabelKind):
    """label_index (N, K) int32 + label_score (N, K) float32 (padding -1 / 0); VQA accuracy."""
    name = "soft"
    fields = ("label_index", "label_score")
    metric = "vqa_accuracy"

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

    def targets(self, read, n_classes):
        import torch  # noqa: PLC0415
        soft = SoftTargets(torch.as_tensor(read("label_index")).long(), torch.as_tensor(read("label_score")),
                           n_classes)
        return soft, soft.best()

    def score(self, logits, targets, labels):
        if not len(labels):
            return float("nan")
        pred = predictions(logits)
        return 100.0 * float(((targets.index == pred[:, None]) * targets.score).sum(1).mean())


class SoftTargets:
    """Soft targets kept sparse, (N, K) answer index + score: a dense (N, C) matrix over a VQA
    answer vocabulary would take gigabytes. Indexing gives SoftTargets; `dense()` a batch's matrix."""

    def __init__(self, index, score, n_classes: int):
        self.index, self.score, self.n_classes = index, score, n_classes

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple:
        return (len(self.index), self.n_classes)

    def __getitem__(self, rows) -> "SoftTargets":
        return SoftTargets(self.index[rows], self.score[rows], self.n_classes)

    def dense(self):
        import torch  # noqa: PLC0415
        out = torch.zeros(self.shape)
        keep = self.index >= 0
        rows = torch.arange(len(self.index))[:, None].expand_as(self.index)
        out[rows[keep], self.index[keep].long()] = self.score[keep]
        return out

    def best(self):
        """The top-scoring answer of each row (-1 for an empty target)."""
        top = self.score.argmax(1)
        best = self.index.gather(1, top[:, None])[:, 0].long()
        return best.where(self.score.max(1).values > 0, best.new_full(best.shape, -1))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP: mean over positives of the precision at their score.

    Tied scores share one threshold: precision there counts every row scored at least as
    high (what a ranking cannot tell apart is not credited in either order)."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positive[order].astype(bool)
    true_pos = np.cumsum(hits)
    group_last = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), len(ranked) - 1]
    last_of = np.repeat(group_last, np.diff(np.r_[-1, group_last]))  # each row's tie group's last index
    return float((true_pos[last_of] / (last_of + 1))[hits].mean())


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """mAP in percent over the classes (columns) with at least one positive; NaN when none has."""
    classes = np.flatnonzero(labels.sum(0) > 0)
    if not len(classes):
        return float("nan")
    return 100.0 * float(np.mean([average_precision(scores[:, c], labels[:, c]) for c in classes]))
