"""The training half of label kinds (the store half is `cfpairs.label_kinds`): dense targets, the
evaluation metric, pair consistency and the class gradient supervision works on, one class per
label kind of the format. Each holds the run's task loss (`cftrain.losses`: `bce`, the paper's,
unless `--loss` names another that serves the label kind): `labels.loss(logits, targets)`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cfpairs.errors import UserError
from cftrain.losses import build_loss, check_serves, loss_class

KINDS: dict[str, type] = {}


def register(cls):
    KINDS[cls.name] = cls
    return cls


def training_labels(label_kind: str, loss: str | None = None, config=None) -> "Labels":
    """The label kind of a store with the run's task loss: `loss` (its options from `config`), or `bce`."""
    return labels_with(label_kind, loss_class(loss), config)


def labels_with(label_kind: str, loss: type, config) -> "Labels":
    """`training_labels` with the run's resolved loss class (`cftrain.parts`): no name looked up."""
    if label_kind not in KINDS:
        raise UserError(f"label kind {label_kind!r} has no trainer (known: {', '.join(KINDS)})")
    return KINDS[label_kind](build_loss(check_serves(loss, label_kind), config))


class Labels:
    name: str = ""
    metric: str = "accuracy"     # the key of the metric in metrics.json, percent
    undefined: str = "no rows"   # why `score` can be NaN (metrics.json then says so, with null)

    def __init__(self, loss):
        self.loss = loss  # (logits (B, N, C), targets (B, C)) -> (B, N): each row's loss per member

    def targets(self, read, n_classes: int) -> tuple:
        """(targets, labels): dense (N, C) float targets (or SoftTargets) and (N,) class indices."""
        raise NotImplementedError

    def score(self, logits, targets, labels) -> float:
        """The metric in percent over these rows (NaN when undefined, e.g. no rows)."""
        if not len(labels):
            return float("nan")
        return 100.0 * float((predictions(logits) == labels).float().mean())

    consistency_undefined = None  # why pair consistency has no meaning for these labels (None: it has)

    def pair_sides_right(self, logits, targets, labels, pairs) -> np.ndarray:
        """(P, 2) 1.0 where a pair's original (column 0) or counterfactual (1) is predicted right, else
        0.0; NaN where a pair has nothing to get right."""
        right = (predictions(logits) == labels).numpy().astype(float)
        return np.stack([right[pairs[:, 0]], right[pairs[:, 1]]], 1)

    def pairs_right(self, logits, targets, labels, pairs) -> np.ndarray:
        """(P,) whether each pair's original and counterfactual are both predicted right (Gardner et
        al.'s contrast consistency); NaN where a pair has nothing to get right."""
        sides = self.pair_sides_right(logits, targets, labels, pairs)
        return np.where(np.isnan(sides).any(1), np.nan, sides.min(1))

    def predicted_names(self, logits, class_names: list) -> list:
        """Each row's prediction as text: its class's name."""
        return [class_names[i] for i in predictions(logits).tolist()]

    one_class_per_row = True    # GS can choose between the row's class and its partner's (--gs-class)

    def gs_weights(self, targets, edges, partner_class: bool = False):
        """(E, C) signs sign(y_j[c] - y_i[c]) on the supervised class of each edge (i, j), 0 elsewhere.

        The class: i's own class when it differs in j, else j's (so a VQA counterfactual
        without an answer uses its original's answer); `partner_class`: j's class first, then i's
        (an original with edits to two other classes then has one supervised class per edit)."""
        diff = _edge_diff(targets, edges)
        y_i, y_j = targets[edges[:, 0]], targets[edges[:, 1]]
        own, other = y_i.argmax(1), y_j.argmax(1)
        if partner_class:
            own, other, y_i = other, own, y_j
        differs = diff.gather(1, own[:, None]).squeeze(1) != 0
        has_own = y_i.max(1).values > 0  # an empty soft target has no class of its own
        chosen = own.where(differs & has_own, other)
        weights = diff.new_zeros(diff.shape)
        weights.scatter_(1, chosen[:, None], diff.gather(1, chosen[:, None]))
        return weights


def _edge_diff(targets, edges):
    return torch.sign(targets.index_select(0, edges[:, 1]) - targets.index_select(0, edges[:, 0]))


def predictions(logits):
    """Class index per row: the sign of a single logit, else the arg-max."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


@register
class Binary(Labels):
    """One logit per row."""
    name = "binary"

    def targets(self, read, n_classes):
        label = torch.as_tensor(read("label"))
        return label[:, None].float(), label

    one_class_per_row = False

    def gs_weights(self, targets, edges, partner_class: bool = False):
        return _edge_diff(targets, edges)  # one logit: its sign change is the supervision


@register
class Multiclass(Labels):
    """C logits against one-hot targets."""
    name = "multiclass"

    def targets(self, read, n_classes):
        label = torch.as_tensor(read("label"))
        return F.one_hot(label, n_classes).float(), label


@register
class Multilabel(Labels):
    """Multi-hot targets; metric: mean average precision over classes."""
    name = "multilabel"
    metric = "map"
    undefined = "no class has a positive row here"

    def targets(self, read, n_classes):
        multi = torch.as_tensor(read("label")).float()
        return multi, multi.argmax(1)

    def score(self, logits, targets, labels):
        if not len(labels):
            return float("nan")
        return mean_average_precision(logits.numpy(), targets.numpy())

    def pair_sides_right(self, logits, targets, labels, pairs):
        """On the classes the edit changed only: each side's predictions (logit > 0) right on every
        one of them; NaN for a pair whose edit changed no class."""
        predicted, truth = (logits > 0).numpy(), (targets > 0.5).numpy()
        original, edited = pairs[:, 0], pairs[:, 1]
        changed = truth[original] != truth[edited]
        sides = np.stack([((predicted[rows] == truth[rows]) | ~changed).all(1) for rows in (original, edited)],
                         1).astype(float)
        sides[~changed.any(1)] = np.nan
        return sides

    def predicted_names(self, logits, class_names: list) -> list:
        """Each row's predicted classes (logit > 0), comma-separated."""
        return [", ".join(class_names[c] for c in np.flatnonzero(row)) or "(none)" for row in (logits > 0).numpy()]

    one_class_per_row = False

    def gs_weights(self, targets, edges, partner_class: bool = False):
        return _edge_diff(targets, edges)  # every class that differs, folded into one signed sum


@register
class Soft(Labels):
    """Soft VQA targets (label_index + label_score); metric: VQA accuracy."""
    name = "soft"
    metric = "vqa_accuracy"
    consistency_undefined = ("soft answers: a counterfactual may have no answer at all (VQA's masked regions), "
                             "so 'both right' has no single meaning")

    def targets(self, read, n_classes):
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
