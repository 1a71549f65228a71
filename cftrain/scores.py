"""A run's kept predictions, `RUN_DIR/predictions.npz`: per split and ensemble member, the scores
its metrics are computed from, with what scoring them needs (targets, pairs, subsets), so a
column added later (`cftrain.columns`) is computed for old runs without the store or retraining.

Layout (version 1), a NumPy archive read with `allow_pickle=False` (no code runs) after its
members' sizes are checked against the file's (a zip that would expand past `MAX_EXPANSION`
times its size is refused):
    meta                JSON: kind "cfpairs-predictions", version, label_kind, n_classes, members,
                        top_k, and per split the name of each array below
    <split> scores      (M, N, C) float32 logits of each member (binary, multiclass, multilabel)
    <split> top_index   (M, N, K) int16 (int32 past 32,767 classes) each member's K highest-scoring
    <split> top_scores  (M, N, K) float16   classes (soft labels: a VQA answer vocabulary has
                        thousands), best first
    <split> mean_index, mean_scores (N, K): the same of the ensemble's mean logits (its prediction)
    <split> targets     (N, C) float32; soft labels: target_index, target_score (N, K) (sparse)
    <split> labels, is_counterfactual, pairs (P, 2), pair_kinds (P,), subset_<k> rows
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cfpairs.errors import UserError
from cfpairs.jsontext import strict_loads
from cfpairs.outputs import write_file_atomic
from cftrain.labels import SoftTargets, predictions
from cftrain.runschema import check_predictions_meta

FILE, KIND, VERSION = "predictions.npz", "cfpairs-predictions", 1
TOP_K = 10
MAX_EXPANSION, FLOOR = 200.0, 64 << 20


@dataclass
class SplitScores:
    """One split's kept predictions; it reads like a `cftrain.data.SplitTensors` to the metrics."""
    name: str
    label_kind: str
    targets: object                    # (N, C) tensor or SoftTargets
    labels: torch.Tensor
    is_counterfactual: torch.Tensor
    pairs: np.ndarray
    pair_kinds: np.ndarray | None = None
    subsets: dict = field(default_factory=dict)
    scores: torch.Tensor | None = None       # (M, N, C) member logits
    top_index: torch.Tensor | None = None    # (M, N, K)
    top_scores: torch.Tensor | None = None
    mean_index: torch.Tensor | None = None   # (N, K) of the ensemble's mean logits
    mean_scores: torch.Tensor | None = None
    pair_relations: np.ndarray | None = None  # (P,) flip or keep (None: every pair flips)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def members(self) -> int:
        return int((self.scores if self.scores is not None else self.top_index).shape[0])

    def logits(self) -> torch.Tensor:
        """(N, C) the ensemble's logits (the mean of its members'); soft labels keep only the top
        K of each row, so a column over them reads `top_index` / `mean_index` instead."""
        if self.scores is None:
            raise ValueError(f"split {self.name}: {self.label_kind} predictions keep each row's top {TOP_K} only")
        return self.scores.mean(0)

    def predicted(self) -> torch.Tensor:
        """(N,) the ensemble's predicted class of each row."""
        return self.mean_index[:, 0].long() if self.scores is None else predictions(self.logits())

    def metric_logits(self) -> torch.Tensor:
        """What the metrics take as logits: the ensemble's, or (soft) a one-hot of its prediction,
        which scores the same under VQA accuracy."""
        if self.scores is not None:
            return self.logits()
        out = torch.zeros(len(self), self.targets.n_classes)
        out[torch.arange(len(self)), self.predicted()] = 1.0
        return out


def kept_scores(member_logits: torch.Tensor, data, label_kind: str) -> SplitScores:
    """A split's predictions from its members' logits (M, N, C) and its `SplitTensors`."""
    base = dict(name=data.name, label_kind=label_kind, targets=data.targets, labels=data.labels,
                is_counterfactual=data.is_counterfactual, pairs=np.asarray(data.pairs, np.int64).reshape(-1, 2),
                pair_kinds=data.pair_kinds, subsets=dict(data.subsets),
                pair_relations=getattr(data, "pair_relations", None))
    if label_kind != "soft":
        return SplitScores(**base, scores=member_logits.float())
    k = min(TOP_K, member_logits.shape[2])
    top, mean = member_logits.topk(k, dim=2), member_logits.mean(0).topk(k, dim=1)
    return SplitScores(**base, top_index=top.indices.int(), top_scores=top.values.float(),
                       mean_index=mean.indices.int(), mean_scores=mean.values.float())


# ---------------------------------------------------------------- the file


def write_scores(path: Path, splits: dict, n_classes: int) -> None:
    """{split: SplitScores} into `path` (atomically)."""
    arrays, layout = {}, {}
    kinds = {s.label_kind for s in splits.values()}
    for split, found in splits.items():
        names = layout[split] = {}
        for key, value in _arrays(found).items():
            names[key] = f"a{len(arrays)}"
            arrays[names[key]] = value
    meta = {"kind": KIND, "version": VERSION, "label_kind": kinds.pop() if kinds else None, "n_classes": n_classes,
            "members": next(iter(splits.values())).members if splits else 0, "top_k": TOP_K, "splits": layout}
    arrays["meta"] = np.array(json.dumps(meta))
    write_file_atomic(path, lambda fh: np.savez_compressed(fh, **arrays))


def _arrays(found: SplitScores) -> dict:
    out = {"labels": found.labels.numpy().astype(np.int64),
           "is_counterfactual": found.is_counterfactual.numpy().astype(bool), "pairs": found.pairs.astype(np.int64),
           "pair_kinds": np.array([] if found.pair_kinds is None else found.pair_kinds, dtype=str),
           "pair_relations": np.array([] if found.pair_relations is None else found.pair_relations, dtype=str)}
    if isinstance(found.targets, SoftTargets):
        out.update(target_index=found.targets.index.numpy().astype(np.int32),
                   target_score=found.targets.score.numpy().astype(np.float32))
    else:
        out["targets"] = found.targets.numpy().astype(np.float32)
    for key in ("scores", "top_index", "top_scores", "mean_index", "mean_scores"):
        if getattr(found, key) is not None:
            out[key] = _compact(key, getattr(found, key).numpy())
    out.update({f"subset_{name}": np.asarray(rows, np.int64) for name, rows in found.subsets.items()})
    return out


def _compact(key: str, values: np.ndarray) -> np.ndarray:
    """Soft labels' top answers as int16 where the answers fit, their scores as float16 (neither is
    what a metric reads: the prediction is `mean_index[:, 0]`); member logits stay float32, exact."""
    if key.endswith("index") and (not values.size or values.max() < np.iinfo(np.int16).max):
        return values.astype(np.int16)
    if key in ("top_scores", "mean_scores"):
        return values.astype(np.float16)
    return values


def read_scores(path: Path) -> dict:
    """{split: SplitScores} from a run's predictions.npz, every array checked (UserError naming the
    file and the array)."""
    path = Path(path)
    archive = _open_checked(path)
    with archive:
        try:
            meta = strict_loads(str(archive["meta"][()]))
        except (KeyError, ValueError) as exc:
            raise UserError(f"{path}: meta: not a predictions file ({exc})") from None
        if not isinstance(meta, dict) or meta.get("kind") != KIND:
            raise UserError(f"{path}: meta: not a predictions file (kind {str(meta.get('kind'))[:40]!r})"
                            if isinstance(meta, dict) else f"{path}: meta: not a predictions file")
        if meta.get("version") != VERSION:
            raise UserError(f"{path}: predictions format {meta.get('version')!r}; this cftrain reads {VERSION} "
                            "(upgrade cfpairs, or write them again with cftrain eval RUN STORE --keep)")
        check_predictions_meta(meta, path)
        return {split: _split(path, archive, split, names, meta) for split, names in meta["splits"].items()}


def _open_checked(path: Path):
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        if declared > max(FLOOR, MAX_EXPANSION * path.stat().st_size):
            raise UserError(f"{path}: its arrays would expand to {declared:,} bytes, over {MAX_EXPANSION:g} times "
                            "the file's size: refused")
        return np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable predictions file ({' '.join(str(exc).split())[:120]})") from None


def _split(path: Path, archive, split: str, names: dict, meta: dict) -> SplitScores:
    def read(key, required=True):
        if key not in names:
            if required:
                raise UserError(f"{path}: split {split}: {key} is missing")
            return None
        try:
            value = archive[names[key]]
        except (KeyError, ValueError) as exc:
            raise UserError(f"{path}: split {split}: {key}: unreadable ({exc})") from None
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise UserError(f"{path}: split {split}: {key} holds a value that is not finite")
        return value

    labels = read("labels")
    n, classes = len(labels), int(meta.get("n_classes") or 0)
    pairs = read("pairs").reshape(-1, 2)
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n):
        raise UserError(f"{path}: split {split}: pairs name a row outside the split's {n}")
    kinds = read("pair_kinds")
    if meta["label_kind"] == "soft":
        targets = SoftTargets(torch.as_tensor(read("target_index")).long(), torch.as_tensor(read("target_score")),
                              classes)
    else:
        targets = torch.as_tensor(read("targets"))
    subsets = {key[len("subset_"):]: read(key) for key in names if key.startswith("subset_")}
    found = SplitScores(split, meta["label_kind"], targets, torch.as_tensor(labels),
                        torch.as_tensor(read("is_counterfactual")), pairs,
                        kinds.astype(object) if len(kinds) else None, subsets,
                        *[None if read(k, False) is None else torch.as_tensor(read(k)) for k in
                          ("scores", "top_index", "top_scores", "mean_index", "mean_scores")])
    relations = read("pair_relations", False)  # absent in files written before keep pairs: every pair flips
    if relations is not None and len(relations):
        if len(relations) != len(pairs) or not set(relations.tolist()) <= {"flip", "keep"}:
            raise UserError(f"{path}: split {split}: pair_relations must give flip or keep for each of {len(pairs)} pairs")
        found.pair_relations = relations.astype(object)
    kept = found.scores if found.scores is not None else found.top_index
    if kept is None or kept.shape[1] != n or len(targets) != n or len(found.is_counterfactual) != n:
        raise UserError(f"{path}: split {split}: scores, targets and labels do not have the split's {n} rows")
    if found.pair_kinds is not None and len(found.pair_kinds) != len(pairs):
        raise UserError(f"{path}: split {split}: pair_kinds gives {len(found.pair_kinds)} kinds for {len(pairs)} pairs")
    for key in ("top_index", "mean_index", "target_index"):  # answers index the classes: checked before use
        values = read(key, False)
        if values is not None and values.size and (values.min() < (-1 if key == "target_index" else 0)
                                                   or values.max() >= classes):
            raise UserError(f"{path}: split {split}: {key} names a class outside the {classes} there are")
    if any(len(rows) and (rows.min() < 0 or rows.max() >= n) for rows in subsets.values()):
        raise UserError(f"{path}: split {split}: a subset names a row outside the split's {n}")
    return found


@torch.no_grad()
def member_scores(models: list, data, label_kind: str, device="cpu", batch: int = 2048) -> tuple:
    """(the ensemble's mean logits (N, C), the split's `SplitScores`) from one pass of every member
    (eval mode) batch by batch; soft labels keep each member's top `TOP_K` per batch (a VQA split's
    logits per member would take gigabytes)."""
    from cftrain.data import to_device  # noqa: PLC0415  (the data layer imports the store readers)

    for model in models:
        model.eval()
    step = batch if data.features is None else batch // 8  # 256 x 36 x 2048 floats: 75 MB
    means, kept = [], []
    for start in range(0, len(data), step):
        rows = to_device(data.batch(np.arange(start, min(start + step, len(data)))), device)
        stacked = torch.stack([model(rows) for model in models]).cpu()  # (M, B, C)
        means.append(stacked.mean(0))
        kept.append(stacked if label_kind != "soft" else stacked.topk(min(TOP_K, stacked.shape[2]), dim=2))
    if not means:
        return torch.zeros((0, 1)), kept_scores(torch.zeros((len(models), 0, 1)), data, label_kind)
    mean = torch.cat(means)
    if label_kind != "soft":
        return mean, kept_scores(torch.cat(kept, 1), data, label_kind)
    found = kept_scores(mean[None], data, label_kind)  # the mean's tops; the members' replaced next
    found.top_index = torch.cat([k.indices for k in kept], 1).int()
    found.top_scores = torch.cat([k.values for k in kept], 1).float()
    return mean, found
