"""The reference block of a text table: every registered reference (`cftrain.references`) fitted
once per table on the store's own texts, trained like the augmentation row (every training row)
and, where the table has a "without edited data" row, on the originals only.

Each fit is kept in `DIR/reference/<name>/<trained on>/`, a folder read like a run's:
`reference.json` (what was fitted, the k-fold scores of each parameter value and the value
chosen, the store's digest), `metrics.json` (the splits' accuracies and pair consistency, as a
run's), `predictions.json` (the page `cftrain eval --predictions` writes, which `cfbuild view
--predictions` reads) and `evals/<transfer>.json`. No fitted model is kept (nothing is pickled):
a reference is deterministic and refitted in seconds when the table needs it again.

The parameter is chosen by k-fold over the training rows' pair groups (an original and its edits
always fall in the same fold, so a fold never scores a text whose edit it trained on); the
features are made once from every training text (no label is read for them), the classifier is
refitted inside each fold.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from cfpairs.errors import UserError
from cfpairs.outputs import signed_json, staged
from cfpairs.progress import Progress
from cftrain.columns import column_values
from cftrain.data import SplitTensors
from cftrain.evaluate import scored
from cftrain.labels import training_labels
from cftrain.late_columns import complete_columns
from cftrain.loading import open_verified
from cftrain.predict import split_page
from cftrain.references import PAIR_SEPARATOR, REFERENCES, counter
from cftrain.rundir import RunDir, read_json_file, write_json_atomic
from cftrain.scores import kept_scores
from cftrain.runschema import check_metrics, check_reference
from cftrain.transfer import EVALS, read_evals

FOLDER, RECORD, METRICS, PREDICTIONS = "reference", "reference.json", "metrics.json", "predictions.json"
VERSION = 1   # of what a reference fits: a kept fit of another version is fitted again
FOLDS = 5
TRAINED_ON = {"augmented": "with edited data", "original": "without edited data"}


def applies(input_kind: str, label_kind: str) -> bool:
    """Whether references fit this store: texts (or text pairs) with one class per row."""
    return input_kind in ("text", "text_pair") and label_kind in ("binary", "multiclass")


def texts_of(store, split: str) -> list:
    """The split's texts as the references read them (a pair as premise, separator, hypothesis)."""
    columns = store[split].examples
    if store.input_kind == "text_pair":
        return [f"{p}{PAIR_SEPARATOR}{h}" for p, h in zip(columns["premise_text"], columns["hypothesis_text"])]
    return [str(t) for t in columns["text"]]


def fold_groups(view) -> np.ndarray:
    """Each row's pair group (rows in no pair: a group of their own), for the k-fold."""
    groups = np.asarray(view.pair_ids).copy()
    alone = groups < 0
    groups[alone] = groups.max(initial=-1) + 1 + np.arange(int(alone.sum()))
    return groups


def training_rows(view, trained_on: str) -> np.ndarray:
    every = np.arange(len(view))
    return every if trained_on == "augmented" else every[~np.asarray(view.examples["is_counterfactual"], bool)]


def choose(ref, features, y: np.ndarray, groups: np.ndarray) -> tuple:
    """(the grid value with the best mean accuracy over the k folds, the first of equals; {value:
    that mean in %}): what scikit-learn's GridSearchCV with GroupKFold chooses. In each fold one
    classifier walks the grid (a warm-started solver starts from the last value's solution)."""
    from sklearn.model_selection import GroupKFold  # noqa: PLC0415

    folds = min(FOLDS, len(np.unique(groups)))
    if folds < 2:
        return ref.grid[0], {}
    right = {value: [] for value in ref.grid}
    for fit, held in GroupKFold(n_splits=folds).split(features, y, groups):
        classifier = ref.classifier(ref.grid[0])
        for value in ref.grid:
            classifier.set_params(**{ref.parameter: value}).fit(features[fit], y[fit])
            right[value].append((classifier.predict(features[held]) == y[held]).mean())
    means = {value: float(np.mean(found)) for value, found in right.items()}
    best = max(means.values())
    return next(v for v in ref.grid if means[v] == best), {v: round(100.0 * m, 2) for v, m in means.items()}


class Counts:
    """A store's texts as word n-gram counts (`cftrain.references.counter`), the counter fitted once
    on every training text and each split (of this store or a transfer store) counted once, read
    by every reference; `rows(trained_on)` narrows them to the rows a reference trains on."""

    def __init__(self, store):
        self.store, self.counter = store, counter(store.input_kind)
        start = time.perf_counter()
        self._counts = {(str(store.path), "train"): self.counter.fit_transform(texts_of(store, "train"))}
        self.seconds = time.perf_counter() - start
        self._splits = {}

    def of(self, store, split: str):
        key = (str(store.path), split)
        if key not in self._counts:
            self._counts[key] = self.counter.transform(texts_of(store, split))
        return self._counts[key]

    def split(self, store, name: str) -> SplitTensors:
        """The split's labels and pairs, what its scores are computed from (no model inputs read)."""
        key = (str(store.path), name)
        if key not in self._splits:
            view = store[name]
            targets, labels = training_labels(store.label_kind).targets(view.examples.__getitem__,
                                                                       len(store.class_names))
            self._splits[key] = SplitTensors(name, {}, targets, labels,
                                             torch.as_tensor(view.examples["is_counterfactual"]), view.pairs,
                                             dict(view.subsets), None, np.asarray(view.pair_kinds, dtype=object),
                                             np.asarray(view.pair_relations, dtype=object))
        return self._splits[key]

    def rows(self, trained_on: str) -> "Counted":
        return Counted(self, trained_on)


class Counted:
    """The counts of the rows one kind of reference trains on (every row, or the originals), with
    the n-grams those rows hold: what a counter fitted on those rows alone would give (its
    vocabulary is the n-grams they hold, in the same sorted order)."""

    def __init__(self, counts: Counts, trained_on: str):
        store, view = counts.store, counts.store["train"]
        self.source, self.rows = counts, training_rows(view, trained_on)
        self.y = np.asarray(view.examples["label"], np.int64)[self.rows]
        if len(np.unique(self.y)) < 2:
            raise UserError(f"{store.path}: split train has one class only in the rows a reference trains on")
        self.groups = fold_groups(view)[self.rows]
        self.edited_rows = int(np.asarray(view.examples["is_counterfactual"], bool)[self.rows].sum())
        held = counts.of(store, "train")[self.rows]
        self.columns = np.flatnonzero(held.getnnz(axis=0))
        self.train = held[:, self.columns]

    def of(self, store, split: str):
        return self.source.of(store, split)[:, self.columns]

    def split(self, store, name: str) -> SplitTensors:
        return self.source.split(store, name)


class Fitted:
    """A reference fitted on counted training rows: `logits(counts)` in the trainer's form."""

    def __init__(self, ref, counted: Counted, store):
        self.n_classes, self.binary = len(store.class_names), store.label_kind == "binary"
        start = time.perf_counter()
        self.weighting = ref.weighting()
        features = self.weighting.fit_transform(counted.train)
        self.value, self.scores = choose(ref, features, counted.y, counted.groups)
        self.classifier = ref.classifier(self.value).fit(features, counted.y)
        self.features, self.rows, self.edited_rows = features.shape[1], len(counted.rows), counted.edited_rows
        self.seconds = round(time.perf_counter() - start, 2)  # the weighting, the k-fold and the fit

    def logits(self, counts) -> torch.Tensor:
        """(N, 1) log-odds for binary labels, else (N, C) log-probabilities (classes never seen in
        training: a very low score)."""
        log_p = self.classifier.predict_log_proba(self.weighting.transform(counts))
        full = np.full((counts.shape[0], self.n_classes), -1e9)
        full[:, self.classifier.classes_] = np.maximum(log_p, -1e9)
        if self.binary:
            return torch.as_tensor(full[:, 1:2] - full[:, 0:1], dtype=torch.float32)
        return torch.as_tensor(full, dtype=torch.float32)


def scores_on(fitted: Fitted, counted: Counted, store) -> tuple:
    """(metrics, consistency, {split: predictions page entry}) of every split of `store`."""
    labels = training_labels(store.label_kind)
    splits = {name: counted.split(store, name) for name in store.splits}
    logits = {name: fitted.logits(counted.of(store, name)) for name in splits}
    metrics, consistency = scored(logits, splits, labels)
    pages = {name: split_page([logits[name]], logits[name], splits[name], labels, store.class_names)
             for name in splits}
    kept = {name: kept_scores(logits[name][None], splits[name], labels.name) for name in splits}
    return metrics, consistency, pages, kept


# ---------------------------------------------------------------- a table's reference folders


def planned(input_kind: str, label_kind: str, modes: list, with_edits: bool) -> list:
    """[(reference name, trained on)] a table of these modes shows: every reference trained like the
    augmentation row, and on the originals too where the table has a "without edited data" row."""
    if not applies(input_kind, label_kind):
        return []
    kinds = ["augmented"] + (["original"] if with_edits and "original" in modes else [])
    return [(name, kind) for name in REFERENCES for kind in kinds]


def require_library() -> None:
    """scikit-learn importable, else a one-line error (checked before a table trains anything)."""
    try:
        import sklearn  # noqa: F401, PLC0415
    except ImportError:
        raise UserError("the table's reference rows need scikit-learn: pip install 'cfpairs[train]' (or "
                        "scikit-learn), or leave them out with --no-reference") from None


def reference_folder(root: Path, name: str, trained_on: str) -> Path:
    return Path(root) / FOLDER / name / trained_on


def keep_references(root: Path, store_path, wanted: list, transfers: dict, digests: dict) -> None:
    """Every wanted reference fitted into `root` (a table folder), unless a fit of the same version
    on the same store, with every transfer evaluated on the same stores, is there already."""
    if not wanted:
        return
    require_library()
    store, verified = open_verified(store_path)
    with store:
        todo = [(n, k) for n, k in wanted if not _current(reference_folder(root, n, k), store.digest, digests)]
        counts, counted = Counts(store) if todo else None, {}
        with Progress(len(todo), "reference rows", unit="fits", every_update=True) as bar:
            for name, trained_on in todo:
                if trained_on not in counted:
                    counted[trained_on] = counts.rows(trained_on)
                _fit_into(reference_folder(root, name, trained_on), store, verified, name, counted[trained_on],
                          transfers)
                bar.set_postfix(fitted=f"{name}/{trained_on}")
                bar.update()


def _current(folder: Path, digest: str, digests: dict) -> bool:
    if not (folder / RECORD).is_file():
        return False
    record = read_reference(folder)
    done = {n: e.get("store_digest") for n, e in read_evals(folder).items()}
    return record["version"] == VERSION and record["store_digest"] == digest and \
        all(done.get(n) == d for n, d in digests.items())


def _fit_into(final: Path, store, verified, name: str, counted: Counted, transfers: dict) -> None:
    ref, trained_on = REFERENCES[name], final.name
    fitted = Fitted(ref, counted, store)
    metrics, consistency, pages, kept = scores_on(fitted, counted, store)
    import sklearn  # noqa: PLC0415  (its version goes into the record)

    record = {"kind": "reference", "version": VERSION, "reference": name, "row_name": ref.row_name,
              "trained_on": trained_on, "store": str(store.path), "store_digest": verified or store.digest,
              "store_verified": verified is not None, "task": store.task, "parameter": ref.parameter,
              "chosen": fitted.value,
              "kfold": {"folds": FOLDS, "accuracy": {str(v): s for v, s in fitted.scores.items()}},
              "rows": fitted.rows, "edited_rows": fitted.edited_rows, "features": fitted.features,
              "seconds": fitted.seconds, "library": f"scikit-learn {sklearn.__version__}"}
    final.parent.mkdir(parents=True, exist_ok=True)
    with staged(final, "reference", force=True) as tmp:
        tmp = Path(tmp)
        write_json_atomic(tmp / RECORD, record)
        write_json_atomic(tmp / METRICS, {"task": store.task, "mode": trained_on, "reference": name,
                                          "label_kind": store.label_kind,  # what later columns are computed for
                                          "metric": "accuracy", "best_epoch": 0, "store": str(store.path),
                                          "store_digest": record["store_digest"],
                                          "store_verified": record["store_verified"],
                                          "splits": metrics, "consistency": consistency,
                                          "columns": column_values(kept, training_labels(store.label_kind))})
        RunDir(tmp).write_scores(kept, len(store.class_names))
        write_json_atomic(tmp / PREDICTIONS, signed_json(
            {"kind": "predictions", "run": str(final), "store": str(store.path),
             "store_digest": record["store_digest"], "metric": "accuracy", "splits": pages}))
        for transfer, path in transfers.items():
            (tmp / EVALS).mkdir(exist_ok=True)
            write_json_atomic(tmp / EVALS / f"{transfer}.json", _transfer_eval(fitted, counted, final, transfer, path))


def _transfer_eval(fitted: Fitted, counted: Counted, run: Path, name: str, path) -> dict:
    """What `cftrain eval` writes for a run, for a fitted reference on a transfer store."""
    store, verified = open_verified(path)
    with store:
        metrics, consistency, _, _ = scores_on(fitted, counted, store)
        return signed_json({"run": str(run), "store": str(path), "store_digest": verified or store.digest,
                            "store_verified": verified is not None, "task": store.task, "metric": "accuracy",
                            "splits": metrics, "consistency": consistency, "transfer": name})


def read_reference(folder: Path) -> dict:
    return check_reference(read_json_file(Path(folder) / RECORD), Path(folder) / RECORD)


def collect_references(root) -> list:
    """Every reference fit under `root` (any depth) as {folder, reference, metrics, evals}, one per
    (reference, trained on, store, version): a copied folder counts once."""
    root, found, seen = Path(root), [], set()
    for path in sorted(Path(root).rglob(RECORD)):
        folder = path.parent
        if any(part.endswith(".part") for part in folder.relative_to(root).parts):
            continue
        record = read_reference(folder)
        key = (record["reference"], record["trained_on"], record["store_digest"], record["version"])
        if key in seen:
            continue
        seen.add(key)
        metrics = check_metrics(read_json_file(folder / METRICS), folder / METRICS)
        kind = metrics.get("label_kind")  # fits from before it was written: their predictions file says
        missing = complete_columns(RunDir(folder), {"store_signature": {"label_kind": kind}} if kind else {}, metrics)
        found.append({"folder": str(folder.relative_to(root)), "reference": record, "metrics": metrics,
                      "evals": read_evals(folder), **({"columns_missing": missing} if missing else {})})
    return found


__all__ = ["Counted", "Counts", "Fitted", "applies", "choose", "collect_references", "keep_references", "planned",
           "read_reference", "reference_folder", "require_library", "scores_on", "texts_of"]
