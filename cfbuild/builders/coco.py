"""COCO multi-label store with Agarwal et al.'s inpainted counterfactuals.

train = train2014 originals and their edits, less `val_size` originals held out with their
edits as `val` (no edited twin leaks into train); test = val2014 originals and edits, with
subset `hard_edited` = edited test rows whose label vector never occurs in train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfbuild.builders.pooled import pooled_vectors
from cfbuild.protocol import SEED_MAX, Builder, option, register, run_builder
from cfbuild.sources.coco_instances import CocoInstances, load_instances
from cfbuild.sources.edited_coco import EditedImages, list_edited
from cfpairs.errors import UserError
from cfpairs.store import describe_source

COCO_SPLITS = {"train": "train2014", "test": "val2014"}
PAIR_KIND = "inpainted"


def edited_labels(inst: CocoInstances, edits: EditedImages, edit_kind: str, where: Path) -> tuple:
    """(original row of each edit, (E, C) edited labels): the removed class is gone (iv), or gone
    unless another instance of it remains (cv)."""
    rows = inst.rows_of(edits.image_ids)
    _refuse(rows < 0, edits, where, lambda i: f"original image {edits.image_ids[i]} is not in {inst.path.name}")
    if edit_kind == "iv":
        classes = inst.class_of(edits.targets)
        _refuse(classes < 0, edits, where, lambda i: f"category id {edits.targets[i]} is not in {inst.path.name}")
        remaining = np.zeros(len(rows), np.int32)
    else:
        ann = inst.annotation_rows(edits.targets)
        _refuse(ann < 0, edits, where, lambda i: f"annotation id {edits.targets[i]} is not in {inst.path.name}")
        _refuse(inst.ann_image_row[ann] != rows, edits, where,
                lambda i: f"annotation {edits.targets[i]} belongs to image {inst.image_ids[inst.ann_image_row[ann[i]]]}")
        classes = inst.ann_class[ann]
        remaining = inst.instances[rows, classes] - 1
    labels = inst.labels[rows]
    labels[np.arange(len(rows)), classes] = (remaining > 0).astype(np.float32)
    return rows, labels


def _refuse(bad: np.ndarray, edits: EditedImages, where: Path, why) -> None:
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise UserError(f"{where / edits.stems[first]}.jpg: {why(first)} ({int(bad.sum())} such edited images)")


def label_keys(labels: np.ndarray) -> np.ndarray:
    """One hashable bytes value per multi-hot row."""
    packed = np.packbits(labels.astype(bool), axis=1)
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel()


def split_examples(inst: CocoInstances, originals: np.ndarray, edits: EditedImages, edit_rows: np.ndarray,
                   edit_labels: np.ndarray, chosen_edits: np.ndarray) -> dict:
    """Rows: the chosen originals, then the chosen edits; pairs join each edit to its original."""
    position = np.full(len(inst.image_ids), -1)
    position[originals] = np.arange(len(originals))
    labels = np.concatenate([inst.labels[originals], edit_labels[chosen_edits]])
    ids = [str(i) for i in inst.image_ids[originals]] + [edits.stems[e] for e in chosen_edits]
    originals_of_edits = position[edit_rows[chosen_edits]]
    edit_positions = len(originals) + np.arange(len(chosen_edits))
    changed = (labels[originals_of_edits] != labels[edit_positions]).any(axis=1)
    return {"ids": ids, "labels": labels, "is_cf": np.r_[np.zeros(len(originals), bool), np.ones(len(chosen_edits), bool)],
            "pairs": np.stack([originals_of_edits[changed], edit_positions[changed]], axis=1),
            "unchanged": [edits.stems[e] for e in chosen_edits[~changed]]}


def plan_splits(inst: dict, edits: dict, edit_kind: str, edited_dir: Path, val_size: int, seed: int) -> dict:
    """{store split: examples dict} for train, val and (when val2014 is there) test."""
    out = {}
    for coco_split in inst:
        rows, labels = edited_labels(inst[coco_split], edits[coco_split], edit_kind, edited_dir / coco_split)
        n = len(inst[coco_split].image_ids)
        if coco_split == "train2014":
            if not 0 < val_size < n:
                raise UserError(f"--val-size {val_size}: must be between 1 and {n - 1} (train2014 has {n} images)")
            held = np.zeros(n, bool)
            held[np.random.default_rng(seed).choice(n, val_size, replace=False)] = True
            for name, keep in (("train", ~held), ("val", held)):
                chosen = np.flatnonzero(keep[rows])
                out[name] = split_examples(inst[coco_split], np.flatnonzero(keep), edits[coco_split], rows, labels, chosen)
        else:
            out["test"] = split_examples(inst[coco_split], np.arange(n), edits[coco_split], rows, labels,
                                         np.arange(len(rows)))
    if "test" in out:
        test = out["test"]
        edited_rows = np.flatnonzero(test["is_cf"])
        seen = np.isin(label_keys(test["labels"][edited_rows]), label_keys(out["train"]["labels"]))
        test["subsets"] = {"hard_edited": edited_rows[~seen]}
    return out


@dataclass
class CocoOptions:
    instances_dir: Path = option(help="Holds instances_train2014.json (and instances_val2014.json for test).",
                                 inputs="dir")
    edited_dir: Path = option(help="Holds train2014/ and val2014/ with COCO_<split>_<image_id>_<target>.jpg (names "
                                   "only are read).", inputs="dir")
    features: list = option(help="Vectors keyed by image id (originals) and file stem (edits): .tsv, HDF5 or .npz. "
                                 "Repeat for several files.", inputs="file", multiple=True)
    imgid2idx: list = option([], help="The {key: row} pickle of each HDF5 --features file, in the same order.",
                             inputs="file", multiple=True)
    val_size: int = option(1000, help="train2014 originals held out (with their edits) as val.", low=1)
    seed: int = option(0, help="Seed of the val draw.", low=0, high=SEED_MAX)
    edit_kind: str = option("iv", help="iv: the name's target is the removed category id; cv: the removed annotation "
                                       "id.", choices=("iv", "cv"))


@register
class Coco(Builder):
    name, Options = "coco", CocoOptions
    summary = "COCO multi-label store: originals and their inpainted edits (Agarwal et al.)."
    example = "cfbuild coco --instances-dir annotations --edited-dir edited --features coco_pooled.npz --out coco.h5"
    manifest = "coco"
    splits = ("train", "val", "test")

    def build(self, o, driver):
        instances_dir, edited_dir = Path(o.instances_dir), Path(o.edited_dir)
        present = {s: instances_dir / f"instances_{s}.json" for s in COCO_SPLITS.values()}
        if not present["train2014"].is_file():
            raise UserError(f"{present['train2014']}: not found (the train split is required)")
        inst = {s: load_instances(p) for s, p in present.items() if p.is_file()}
        if "val2014" in inst and list(inst["val2014"].category_ids) != list(inst["train2014"].category_ids):
            raise UserError(f"{present['val2014']}: its categories differ from {present['train2014'].name}'s")
        edits = {s: list_edited(edited_dir, s) for s in inst}
        splits = plan_splits(inst, edits, o.edit_kind, edited_dir, o.val_size, o.seed)
        keys = [k for s in splits.values() for k in s["ids"]]
        vectors, feature_sources, extraction = pooled_vectors(o.features, o.imgid2idx, keys)
        if extraction:
            driver.settings["features_extraction"] = extraction  # in the build record
        driver.sources.extend([describe_source(p, "coco") for p in present.values() if p.is_file()] + feature_sources)
        report = driver.report
        report.update(missing_splits=[] if "test" in splits else ["test"], splits={})
        start = 0
        with driver.writer(task="coco", input_kind="vector", label_kind="multilabel",
                           class_names=inst["train2014"].class_names) as writer:
            for name, s in splits.items():
                x = vectors[start:start + len(s["ids"])]
                start += len(s["ids"])
                examples = {"id": s["ids"], "is_counterfactual": s["is_cf"], "label": s["labels"], "x": x}
                writer.write_split(name, examples, s["pairs"], [PAIR_KIND] * len(s["pairs"]), s.get("subsets"))
                report["splits"][name] = {"originals": int((~s["is_cf"]).sum()), "edits": int(s["is_cf"].sum()),
                                          "pairs": len(s["pairs"]), "unchanged_label_edits": len(s["unchanged"]),
                                          "unchanged_first": s["unchanged"][:10],
                                          **{k: len(v) for k, v in s.get("subsets", {}).items()}}


def build_coco(instances_dir, edited_dir, features: list, imgid2idx: list, out, force: bool = False,
               **options) -> dict:
    """The COCO store (`CocoOptions`) from Python; returns the build report."""
    return run_builder("coco", out, force, instances_dir=Path(instances_dir), edited_dir=Path(edited_dir),
                       features=[Path(p) for p in features], imgid2idx=[Path(p) for p in imgid2idx], **options)
