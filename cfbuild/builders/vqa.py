"""VQA-CP v2 regions store (README: "VQA-CP stores"): counterfactuals mask the boxes humans looked at.

Flow: stream questions and annotations into compact tables; hold `val` out of
train; write /regions (linked or materialised); align human-attention scores with
questions; then, per split, vectorised: soft targets, region masks, pairs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cfbuild import __version__
from cfbuild.builders.regions import RegionTable, write_linked, write_materialized
from cfbuild.builders.vqa_attention import Attention, AttentionSource
from cfpairs.errors import UserError
from cfbuild.sources.features import format_of, open_feature_files
from cfbuild.sources.vqacp import AnswerIndex, VqaSplit, read_split, split_files, tokenize_question
from cfpairs.store import StoreWriter
from cfbuild.text import build_vocab, encode
from cfpairs.outputs import check_output

CF_KIND = "masked_relevant"


@dataclass
class VqaOptions:
    threshold: float = 0.2
    focused_threshold: float = 0.8
    val_size: int = 8000
    seed: int = 0
    min_answer_count: int = 9
    materialize: bool = False
    float16: bool = False
    skip_missing_images: bool = False
    max_tokens: int = 14


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


def build_vqa(vqacp_dir, features: list, imgid2idx: list, out, *, hints=None, hat_dir=None,
              options: VqaOptions | None = None, force: bool = False) -> dict:
    """Write the VQA-CP store at `out`; returns the build report (also stored as the `report` attribute)."""
    # before any work
    check_output(out, "store", force, inputs=[vqacp_dir, *features, *imgid2idx, hints, hat_dir])
    options = options or VqaOptions()
    attention = AttentionSource(hints, hat_dir)
    splits, answers, sources = read_questions(vqacp_dir, options)
    classes, class_of = answer_vocabulary(splits["train"], answers, options.min_answer_count)
    if not classes:
        raise UserError(f"no training answer occurs {options.min_answer_count} times (--min-answer-count)")
    linked = not options.materialize and all(format_of(p).linkable for p in features)
    build = {"command": "cfbuild vqa", "version": __version__,
             "parameters": {**asdict(options), "features": [Path(p).name for p in features],
                            "attention": "hints" if hints else "hat", "linked": linked}}
    report = {"missing_splits": [] if "test" in splits else ["test", "test_focused"],
              "answers": len(classes), "features": "linked" if linked else "materialized"}
    with open_feature_files(features, imgid2idx) as files, \
            StoreWriter(out, task="vqa", input_kind="regions", label_kind="soft", class_names=classes,
                        build=build, sources=sources, force=force) as writer:
        needed = np.unique(np.concatenate([s.image_id for s in splits.values()]))
        regions = write_linked(writer, files) if linked else write_materialized(writer, files, needed, options.float16)
        splits, report["images_missing"] = _drop_missing(splits, regions, options.skip_missing_images)
        words = {name: [tokenize_question(q) for q in split.question] for name, split in splits.items()}
        vocab = build_vocab(words["train"], size=10 ** 9)
        writer.write_vocab(vocab)
        report["splits"] = {}
        for name, split in splits.items():
            tokens = encode(words[name], vocab, options.max_tokens)
            report["splits"].update(_write_split(writer, name, split, regions, attention, class_of, tokens, options))
        report["attention_unused"] = len(attention.question_ids - attention.used)
        writer.set_json_attr("sources", sources + regions.sources + [attention.source_entry()])
        writer.set_json_attr("report", report)
    return report


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
