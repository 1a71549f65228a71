"""VQA-CP v2 regions store (docs/BUILDING.md: "VQA-CP stores"): counterfactuals mask the boxes humans looked at.

Flow: stream questions and annotations into compact tables; hold `val` out of
train; write /regions (linked or materialised); align human-attention scores with
questions; then, per split, vectorised: soft targets, region masks, pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfbuild.builders.regions import RegionTable, write_linked, write_materialized
from cfbuild.builders.vqa_attention import Attention, AttentionSource
from cfbuild.protocol import SEED_MAX, Builder, option, register, run_builder
from cfbuild.sources.features import check_one_extraction, format_of, open_feature_files
from cfbuild.sources.vqacp import AnswerIndex, VqaSplit, read_split, split_files, tokenize_question
from cfbuild.text import build_vocab, encode
from cfpairs.errors import UserError

CF_KIND = "masked_relevant"


@dataclass
class VqaOptions:
    vqacp_dir: Path = option(help="Holds vqacp_v2_{train,test}_{questions,annotations}.json.", inputs="dir")
    features: list = option(help="Bottom-up features: .tsv, or HDF5 (image_features, image_bb). Repeat for several "
                                 "files.", inputs="file", multiple=True)
    imgid2idx: list = option([], help="The {image_id: row} pickle of each HDF5 --features file, in the same order.",
                             inputs="file", multiple=True)
    hints: Path | None = option(None, help="Per-question per-box attention scores (.json or pickle).", inputs="file")
    hat_dir: Path | None = option(None, help="Raw VQA-HAT maps <question_id>_<k>.png (instead of --hints).",
                                  inputs="dir")
    threshold: float = option(0.2, help="Counterfactuals mask every box scored above this.", low=0, high=1)
    focused_threshold: float = option(0.8, help="test_focused keeps only boxes scored at least this.", low=0, high=1)
    val_size: int = option(8000, help="Training questions held out as val.", low=1)
    seed: int = option(0, help="Seed of the val draw.", low=0, high=SEED_MAX)
    min_answer_count: int = option(9, help="Answer vocabulary: training multiple-choice answers seen at least this "
                                           "often.", low=1)
    question_tokens: int = option(14, help="Question tokens kept (BUTD's 14).", low=1)
    materialize: bool = option(False, help="Copy the used images' features into the store (else: link).")
    float16: bool = option(False, help="With --materialize: store features as float16.")
    skip_missing_images: bool = option(False, help="Leave out (and report) questions whose image has no features.")


def answer_vocabulary(train: VqaSplit, answers: AnswerIndex, min_count: int) -> tuple[list, np.ndarray]:
    """Class names (normalised multiple-choice answers seen >= min_count times in train, most frequent
    first) and the class of every answer id (-1 outside the vocabulary)."""
    counts = np.bincount(train.mc_answer, minlength=len(answers.names))
    kept = np.flatnonzero(counts >= min_count)
    kept = kept[np.lexsort((np.array(answers.names, dtype=object)[kept].astype(str), -counts[kept]))]
    class_of = np.full(len(answers.names), -1, np.int64)
    class_of[kept] = np.arange(len(kept))
    return [answers.names[i] for i in kept], class_of


def soft_targets(split: VqaSplit, class_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) label_index / label_score: in-vocabulary answers, score min(1, 0.3 x count), padded -1 / 0."""
    n = len(split)
    row = np.repeat(np.arange(n), np.diff(split.answer_offsets))
    cls = class_of[split.answer_ids] if len(split.answer_ids) else np.zeros(0, np.int64)
    keep = cls >= 0
    row, cls = row[keep], cls[keep]
    score = np.minimum(1.0, 0.3 * split.answer_counts[keep])
    slot = np.arange(len(row)) - np.searchsorted(row, row)  # position within its question
    width = max(1, int(slot.max(initial=-1)) + 1)
    index = np.full((n, width), -1, np.int32)
    scores = np.zeros((n, width), np.float32)
    index[row, slot], scores[row, slot] = cls, score
    return index, scores


def _examples(split: VqaSplit, image_row, labels, tokens, mask) -> dict:
    ids, lengths = tokens
    return {"id": split.question_id.astype(str), "is_counterfactual": np.zeros(len(split), bool),
            "label_index": labels[0], "label_score": labels[1], "text": np.array(split.question, dtype=object),
            "tokens": ids, "length": lengths, "answer_type": split.answer_type, "question_type": split.question_type,
            "image_row": image_row, "region_mask": mask}


def with_counterfactuals(ex: dict, att: Attention, real: np.ndarray, threshold: float) -> tuple[dict, np.ndarray, dict]:
    """Append one masked counterfactual per question whose attention exceeds `threshold` somewhere."""
    above = np.nan_to_num(att.scores, nan=-1.0) > np.float32(threshold)
    any_above = above.any(axis=1)
    has_target = (ex["label_index"] >= 0).any(axis=1)
    made = np.flatnonzero(att.has & any_above & has_target)
    stats = {"with_attention": int(att.has.sum()), "counterfactuals": len(made),
             "skipped_no_box_above_threshold": int((att.has & ~any_above).sum()),
             "skipped_empty_target": int((att.has & any_above & ~has_target).sum()),
             "mean_boxes_masked": round(float(above[made].sum(1).mean()), 3) if len(made) else 0.0}
    cf = {k: v[made] for k, v in ex.items()}  # copies: fancy indexing
    cf["id"] = np.array([f"{qid}:{CF_KIND}" for qid in cf["id"]], dtype=object)
    cf["is_counterfactual"][:] = True
    cf["label_index"][:], cf["label_score"][:] = -1, 0.0
    cf["region_mask"] = real[made] & ~above[made]
    out = {k: np.concatenate([v, cf[k]]) for k, v in ex.items()}
    pairs = np.stack([made, len(ex["id"]) + np.arange(len(made))], axis=1)
    return out, pairs, stats


def focused(ex: dict, att: Attention, real: np.ndarray, threshold: float) -> tuple[dict, dict]:
    """Test questions with attention, each keeping only boxes scored >= threshold (none kept: skipped)."""
    keep = real & (np.nan_to_num(att.scores, nan=-1.0) >= np.float32(threshold))
    rows = np.flatnonzero(att.has & keep.any(axis=1))
    out = {k: v[rows] for k, v in ex.items()}
    out["region_mask"] = keep[rows]
    return out, {"kept": len(rows), "skipped_nothing_kept": int((att.has & ~keep.any(axis=1)).sum())}


def _drop_missing(splits: dict, regions: RegionTable, skip: bool) -> tuple[dict, dict]:
    """Questions whose image no feature file holds: an error, or (with `skip`) left out and counted."""
    rows = {name: regions.rows_of(s.image_id) for name, s in splits.items()}
    missing = np.unique(np.concatenate([s.image_id[rows[n] < 0] for n, s in splits.items()]))
    lost = {n: int((r < 0).sum()) for n, r in rows.items()}
    if missing.size and not skip:
        raise UserError(f"{sum(lost.values())} question(s) use {missing.size} image(s) found in no feature file "
                        f"(first: {', '.join(map(str, missing[:5]))}); pass --skip-missing-images to leave them out")
    kept = {n: s.take(np.flatnonzero(rows[n] >= 0)) if lost[n] else s for n, s in splits.items()}
    return kept, {"images": int(missing.size), "questions_skipped": lost, "first": missing[:10].tolist()}


def read_questions(vqacp_dir, options: VqaOptions) -> tuple[dict, AnswerIndex, list]:
    """train / val / test tables (test only when its files exist) and the JSON files' `sources` entries."""
    answers = AnswerIndex()
    train_all = read_split(vqacp_dir, "train", answers)
    if not 0 < options.val_size < len(train_all):
        raise UserError(f"--val-size {options.val_size}: must be between 1 and {len(train_all) - 1} "
                        f"(the training file has {len(train_all)} questions)")
    val_rows = np.sort(np.random.default_rng(options.seed).choice(len(train_all), options.val_size, replace=False))
    splits = {"train": train_all.take(np.setdiff1d(np.arange(len(train_all)), val_rows)),
              "val": train_all.take(val_rows)}
    if all(p.is_file() for p in split_files(vqacp_dir, "test")):
        splits["test"] = read_split(vqacp_dir, "test", answers)
    shas = {**train_all.sha256, **(splits["test"].sha256 if "test" in splits else {})}
    sources = [{"file": name, "size": (Path(vqacp_dir) / name).stat().st_size, "sha256": sha,
                "manifest_id": "vqacp"} for name, sha in shas.items()]
    return splits, answers, sources


@register
class Vqa(Builder):
    name, Options = "vqa", VqaOptions
    summary = "VQA-CP v2 store: counterfactuals mask the boxes human attention marks as relevant."
    example = ("cfbuild vqa --vqacp-dir vqacp2 --features trainval_36.h5 --imgid2idx trainval36_imgid2idx.pkl "
               "--hints hints.pkl --threshold 0.2 --out vqacp.h5")
    manifest = "vqacp"
    splits = ("train", "val", "test", "test_focused")

    def check(self, o):
        super().check(o)
        if (o.hints is None) == (o.hat_dir is None):
            raise UserError("give exactly one of --hints and --hat-dir")
        if o.float16 and not o.materialize and any(format_of(p).linkable for p in o.features):
            raise UserError("--float16 needs --materialize (linked features are left as they are)")

    def build(self, o, driver):
        """Write the VQA-CP store; the report is the driver's (stored as the `report` attribute)."""
        attention = AttentionSource(o.hints, o.hat_dir)
        splits, answers, sources = read_questions(o.vqacp_dir, o)
        driver.sources.extend(sources)
        classes, class_of = answer_vocabulary(splits["train"], answers, o.min_answer_count)
        if not classes:
            raise UserError(f"no training answer occurs {o.min_answer_count} times (--min-answer-count)")
        linked = not o.materialize and all(format_of(p).linkable for p in o.features)
        report = driver.report
        report.update(missing_splits=[] if "test" in splits else ["test", "test_focused"], answers=len(classes),
                      features="linked" if linked else "materialized")
        with open_feature_files(o.features, o.imgid2idx) as files:
            extraction = check_one_extraction(files)
            if extraction:
                driver.settings["features_extraction"] = extraction  # in the build record
            with driver.writer(task="vqa", input_kind="regions", label_kind="soft", class_names=classes) as writer:
                needed = np.unique(np.concatenate([s.image_id for s in splits.values()]))
                regions = write_linked(writer, files) if linked else write_materialized(writer, files, needed, o.float16)
                splits, report["images_missing"] = _drop_missing(splits, regions, o.skip_missing_images)
                words = {name: [tokenize_question(q) for q in split.question] for name, split in splits.items()}
                vocab = build_vocab(words["train"], size=10 ** 9)
                writer.write_vocab(vocab)
                report["splits"] = {}
                for name, split in splits.items():
                    tokens = encode(words[name], vocab, o.question_tokens)
                    report["splits"].update(_write_split(writer, name, split, regions, attention, class_of, tokens, o))
                report["attention_unused"] = len(attention.question_ids - attention.used)
                driver.sources.extend(regions.sources + [attention.source_entry()])
                if linked:  # what training then needs, said where the build ends
                    files = ", ".join(p.name for p in o.features)
                    report["training_reads"] = (f"the features where they are ({files}, relative to the store): "
                                                "with --allow-external, each checked against its sha256 in the "
                                                "store's sources before a run reads it")


def build_vqa(vqacp_dir, features: list, imgid2idx: list, out, *, hints=None, hat_dir=None, force: bool = False,
              **options) -> dict:
    """The VQA-CP store (`VqaOptions`) from Python; returns the build report."""
    return run_builder("vqa", out, force, vqacp_dir=Path(vqacp_dir), features=[Path(p) for p in features],
                       imgid2idx=[Path(p) for p in imgid2idx], hints=None if hints is None else Path(hints),
                       hat_dir=None if hat_dir is None else Path(hat_dir), **options)


def _write_split(writer, name, split, regions, attention, class_of, tokens, options) -> dict:
    rows = regions.rows_of(split.image_id)
    real = regions.real_boxes(rows)
    labels = soft_targets(split, class_of)
    ex = _examples(split, rows, labels, tokens, real)
    att = attention.for_split(split.question_id, rows, regions, real)
    stats = {"questions": len(split), "without_answer_in_vocabulary": int((labels[0] < 0).all(axis=1).sum())}
    if name == "test":
        writer.write_split(name, ex, subsets=answer_type_subsets(ex["answer_type"]))
        focused_ex, focused_stats = focused(ex, att, real, options.focused_threshold)
        writer.write_split("test_focused", focused_ex, subsets=answer_type_subsets(focused_ex["answer_type"]))
        return {name: {**stats, "with_attention": int(att.has.sum())}, "test_focused": focused_stats}
    ex, pairs, cf_stats = with_counterfactuals(ex, att, real, options.threshold)
    writer.write_split(name, ex, pairs, [CF_KIND] * len(pairs), subsets=answer_type_subsets(ex["answer_type"]))
    return {name: {**stats, **cf_stats}}


def answer_type_subsets(answer_types: np.ndarray) -> dict:
    """{answer_<type>: rows}: VQA reports accuracy per answer type (yes/no -> answer_yes_no); the
    trainer reads them as the store's generic subsets (a counterfactual shares its question's type)."""
    kinds = np.asarray(answer_types).astype(str)
    return {"answer_" + re.sub(r"[^a-z0-9]+", "_", kind.lower()).strip("_"): np.flatnonzero(kinds == kind)
            for kind in sorted(set(kinds.tolist()))}
