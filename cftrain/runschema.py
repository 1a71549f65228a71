"""The one schema a run folder's JSON is read through (`config.json`, `metrics.json`,
`evals/<name>.json`, a reference fit's `reference.json`, and the `meta` of `predictions.npz`): run folders travel between people
like stores, so nothing in them is believed unchecked. Types, finite numbers in their domain
(percentages in [0, 100], cosines in [-1, 1], counts >= 0), registered modes, models, optimizers
and metrics, option values as their declarations allow, names safe to show in a table; a file that
breaks it is refused with one line naming the file and the key (`UserError`).
"""

from __future__ import annotations

import math
import re

from cfpairs.errors import UserError
from cfpairs.schema import SPLIT_NAME
from cftrain.registry import PARTS, all_options
from cftrain.registry import problem as option_problem

DIGEST = re.compile(r"[0-9a-f]{64}")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}")  # groups, kinds, transfer names: table headers
METRICS = ("accuracy", "map", "vqa_accuracy")
JOB_KEYS = {"mode": str, "seed": int, "trial": int, "options": dict, "fold": int, "final": bool, "fraction": float}


class _Checker:
    """Walks one file's JSON; `fail(key, problem)` names the file and the dotted key."""

    def __init__(self, path):
        self.path = path

    def fail(self, key: str, problem: str):
        raise UserError(f"{self.path}: {key or 'the file'}: {problem}")

    def obj(self, value, key: str) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected a JSON object, found {_kind(value)}")
        return value

    def member(self, values: dict, name: str, key: str, required: bool = True):
        if name not in values:
            if required:
                self.fail(f"{key}.{name}" if key else name, "is missing")
            return None
        return values[name]

    def number(self, value, key: str, low: float, high: float, nullable: bool = False):
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"expected a finite number, found {_shown(value)}")
        if not low <= value <= high:
            self.fail(key, f"{value} is outside [{low:g}, {high:g}]")
        return value

    def count(self, value, key: str, nullable: bool = False):
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(key, f"expected a count (an integer >= 0), found {_shown(value)}")
        return value

    def text(self, value, key: str, pattern=None, choices=None, nullable: bool = False):
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            self.fail(key, f"expected a string, found {_shown(value)}")
        if choices is not None and value not in choices:
            self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{value[:40]!r} is not a valid name")
        return value

    def names(self, values, key: str, pattern) -> dict:
        values = self.obj(values, key)
        for name in values:
            self.text(name, f"{key}.{name[:40]}", pattern)
        return values


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- the three files


def check_config(values, path) -> dict:
    """config.json: every declared option valid, the mode, model and optimizer registered, the store's
    digest, its signature and the campaign's job labels well-formed."""
    check = _Checker(path)
    check.obj(values, "")
    options = all_options()
    check.member(values, "mode", "")
    _check_options(check, values, options, "")
    check.text(values.get("store"), "store", nullable=True)
    check.text(values.get("store_digest"), "store_digest", DIGEST)
    if not isinstance(values.get("store_verified", False), bool):
        check.fail("store_verified", f"expected true or false, found {_shown(values['store_verified'])}")
    _check_signature(check, values.get("store_signature", {}))
    job = check.obj(values.get("job", {}), "job")
    for name, kind in JOB_KEYS.items():
        value = job.get(name)
        ok = value is None or (isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))) or \
            (kind is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            check.fail(f"job.{name}", f"expected {kind.__name__}, found {_shown(value)}")
    if job.get("mode") not in (None, values.get("mode")):
        check.fail("job.mode", f"{job['mode']!r} is not the run's mode {values.get('mode')!r}")
    drawn = job.get("options") or {}
    unknown = sorted(set(drawn) - set(options))
    if unknown:
        check.fail(f"job.options.{unknown[0][:40]}", "is not a cftrain option")
    _check_options(check, drawn, options, "job.options.")
    return values


def _check_options(check: _Checker, values: dict, options: dict, prefix: str) -> None:
    for name, option in options.items():
        if name in values:
            problem = option_problem(option, option.coerce(values[name]))
            if problem:
                check.fail(prefix + name, f"{_shown(values[name])} {problem}")


def _check_signature(check: _Checker, signature) -> None:
    signature = check.obj(signature, "store_signature")
    names = signature.get("class_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        check.fail("store_signature.class_names", "expected a list of class names")
    for key in ("vocab_size", "feature_width"):
        check.count(signature.get(key), f"store_signature.{key}", nullable=True)


def check_metrics(values, path) -> dict:
    """metrics.json: the metric's name, every split's groups {n, metric in [0, 100]}, pair
    consistency in [0, 100], alignment cosines in [-1, 1], the mode registered."""
    check = _Checker(path)
    check.obj(values, "")
    metric = check.text(check.member(values, "metric", ""), "metric", choices=METRICS)
    check.text(check.member(values, "mode", ""), "mode", choices=tuple(PARTS["mode"]))
    check.text(values.get("task"), "task")
    check.text(values.get("label_kind"), "label_kind", choices=("binary", "multiclass", "multilabel", "soft"),
               nullable=True)
    check.count(check.member(values, "best_epoch", ""), "best_epoch")
    check.text(values.get("store_digest"), "store_digest", DIGEST, nullable=True)
    check_scores(check, values, metric)
    for split, found in check.names(values.get("alignment", {}), "alignment", SPLIT_NAME).items():
        found = check.obj(found, f"alignment.{split}")
        check.number(found.get("cosine"), f"alignment.{split}.cosine", -1, 1, nullable=True)
    check_columns(check, values.get("columns", {}))
    return values


def check_columns(check: _Checker, columns) -> None:
    """`columns` {column: {split: {value, n}}}: a registered column's values in its declared range,
    any other's (a column since removed) finite."""
    from cftrain.columns import COLUMNS  # noqa: PLC0415  (columns import the labels, not the schema)

    for name, splits in check.names(columns, "columns", NAME).items():
        known = COLUMNS.get(name)
        low, high = (known.low, known.high) if known else (-1e12, 1e12)
        for split, cell in check.names(splits, f"columns.{name}", SPLIT_NAME).items():
            key = f"columns.{name}.{split}"
            cell = check.obj(cell, key)
            check.number(check.member(cell, "value", key), f"{key}.value", low, high, nullable=True)
            check.count(check.member(cell, "n", key), f"{key}.n")


def check_scores(check: _Checker, values: dict, metric: str) -> None:
    """`splits` {split: {group: {n, <metric>}}} and `consistency` {split: {kind: {pairs, consistency}}}."""
    splits = check.names(check.member(values, "splits", ""), "splits", SPLIT_NAME)
    for split, groups in splits.items():
        for group, cell in check.names(groups, f"splits.{split}", NAME).items():
            key = f"splits.{split}.{group}"
            cell = check.obj(cell, key)
            check.count(check.member(cell, "n", key), f"{key}.n")
            check.number(check.member(cell, metric, key), f"{key}.{metric}", 0, 100, nullable=True)
    for split, kinds in check.names(values.get("consistency", {}), "consistency", SPLIT_NAME).items():
        for kind, cell in check.names(kinds, f"consistency.{split}", NAME).items():
            key = f"consistency.{split}.{kind}"
            cell = check.obj(cell, key)
            check.count(check.member(cell, "pairs", key), f"{key}.pairs")
            check.number(cell.get("consistency"), f"{key}.consistency", 0, 100, nullable=True)


def check_eval(values, path) -> dict:
    """evals/<name>.json (what `cftrain eval` prints): the store's digest, the metric, its scores."""
    check = _Checker(path)
    check.obj(values, "")
    metric = check.text(check.member(values, "metric", ""), "metric", choices=METRICS)
    check.text(check.member(values, "store_digest", ""), "store_digest", DIGEST)
    check.text(values.get("store"), "store", nullable=True)
    check_scores(check, values, metric)
    return values


def check_reference(values, path) -> dict:
    """reference.json (`cftrain.reference_rows`): a registered reference, how it was trained, the
    store's digest, the k-fold accuracies (percentages) and the parameter value chosen."""
    from cftrain.references import REFERENCES  # noqa: PLC0415  (the registry, without scikit-learn)

    check = _Checker(path)
    check.obj(values, "")
    if values.get("kind") != "reference":
        check.fail("kind", f"expected 'reference', found {_shown(values.get('kind'))}")
    check.count(check.member(values, "version", ""), "version")
    check.text(check.member(values, "reference", ""), "reference", choices=tuple(REFERENCES))
    check.text(check.member(values, "trained_on", ""), "trained_on", choices=("augmented", "original"))
    check.text(check.member(values, "store_digest", ""), "store_digest", DIGEST)
    if not isinstance(values.get("store_verified", False), bool):
        check.fail("store_verified", f"expected true or false, found {_shown(values['store_verified'])}")
    for key in ("store", "task", "parameter", "library", "row_name"):
        check.text(values.get(key), key, nullable=True)
    check.number(values.get("chosen"), "chosen", 0, 1e12, nullable=True)
    for key in ("rows", "edited_rows", "features"):
        check.count(values.get(key), key, nullable=True)
    kfold = check.obj(values.get("kfold", {}), "kfold")
    check.count(kfold.get("folds"), "kfold.folds", nullable=True)
    for value, accuracy in check.obj(kfold.get("accuracy", {}), "kfold.accuracy").items():
        check.number(accuracy, f"kfold.accuracy.{value[:20]}", 0, 100)
    return values


def check_predictions_meta(values, path) -> dict:
    """predictions.npz's `meta` (`cftrain.scores`): its kind and version, a known label kind, counts,
    and per split (a valid name) the archive's name of each array."""
    from cftrain.labels import KINDS  # noqa: PLC0415

    check = _Checker(f"{path}: meta")
    check.obj(values, "")
    check.text(check.member(values, "label_kind", ""), "label_kind", choices=tuple(KINDS))
    for key in ("n_classes", "members", "top_k"):
        check.count(check.member(values, key, ""), key)
    for split, arrays in check.names(check.member(values, "splits", ""), "splits", SPLIT_NAME).items():
        for name, member in check.names(arrays, f"splits.{split}", NAME).items():
            check.text(member, f"splits.{split}.{name}", re.compile(r"a[0-9]{1,6}"))
    return values
