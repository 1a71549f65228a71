"""A hand-worked VQA-CP fixture in the exact source formats: JSON lists, bottom-up
HDF5 + imgid2idx pickle or TSV, attention hints as JSON or pickle, VQA-HAT PNG maps."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

from cfpairs.check import verify_store
from cli.cfbuild import main

WIDTH, HEIGHT, R, D = 100, 80, 4, 3
# feature file rows: image 3, 1, 2 are used; image 4 is not
ROW_IMAGES = [3, 1, 2, 4]
BOXES = np.array([[0, 0, 50, 40], [50, 0, 100, 40], [0, 40, 50, 80], [0, 0, 100, 80]], np.float32)

#           qid  image question                      answers (10 raw strings)                 mc answer
TRAIN = [(11, 1, "Is the man's shirt red?", ["Yes"] * 7 + ["no"] * 3, "yes"),
         (12, 2, "What color is the bus?", ["two"] * 2 + ["2"] + ["red"] * 7, "red"),
         (13, 1, "What color, is it?", ["red"] * 10, "red"),
         (14, 3, "Is it raining?", ["yes"] * 10, "yes"),
         (15, 3, "What animal is this?", ["the giraffe"] * 10, "giraffe"),
         (16, 2, "Is there a bus?", ["yes"] * 10, "yes")]  # row 5: --seed 0 holds it out as val
TEST = [(21, 2, "What color is the car?", ["red"] * 2 + ["yes"] + ["blue"] * 7, "blue"),
        (22, 3, "Is this a zoo?", ["yes"] * 10, "yes"),
        (23, 1, "What is red?", ["shirt"] * 10, "shirt")]
HINTS = {11: [0.1, 0.5, 0.9, 0.2],     # > 0.2: boxes 1, 2 masked (0.2 itself is kept)
         12: [0.0, 0.1, 0.2, 0.15],    # nothing above 0.2: no counterfactual
         14: [0.3, 0.3, 0.3, 0.3],     # everything masked
         15: [0.9, 0.0, 0.0, 0.0],     # answer outside the vocabulary: no counterfactual
         16: [0.25, 0.0, 0.0, 0.0],    # val
         21: [0.8, 0.79, 1.0, 0.0],    # focused (>= 0.8): boxes 0, 2 (0.8 itself is kept)
         22: [0.5, 0.1, 0.0, 0.7]}     # focused keeps nothing: skipped


def features() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(len(ROW_IMAGES), R, D)).astype(np.float32)


def _annotation(qid, image, answers, mc):
    return {"question_id": qid, "image_id": image, "question_type": "what color" if "color" in answers else "is",
            "answer_type": "yes/no" if mc == "yes" else "other", "multiple_choice_answer": mc,
            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)]}


def write_vqacp(folder: Path, train=TRAIN, test=TEST) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", train), ("test", test)):
        questions = [{"question_id": q, "image_id": img, "question": text, "coco_split": "train2014"}
                     for q, img, text, _, _ in rows]
        annotations = [_annotation(q, img, answers, mc) for q, img, _, answers, mc in rows]
        (folder / f"vqacp_v2_{split}_questions.json").write_text(json.dumps(questions))
        (folder / f"vqacp_v2_{split}_annotations.json").write_text(json.dumps(annotations, indent=1))
    return folder


def write_h5(path: Path, rows=None, feats=None) -> tuple[Path, Path]:
    rows = list(range(len(ROW_IMAGES))) if rows is None else rows
    feats = features()[rows] if feats is None else feats
    boxes = np.tile(BOXES, (len(rows), 1, 1))
    spatial = np.concatenate([boxes / [WIDTH, HEIGHT, WIDTH, HEIGHT],
                              (boxes[..., 2:] - boxes[..., :2]) / [WIDTH, HEIGHT]], axis=-1)
    with h5py.File(path, "w") as h5:
        h5["image_features"], h5["image_bb"], h5["spatial_features"] = feats, boxes, spatial.astype(np.float32)
    index = path.with_suffix(".pkl")
    index.write_bytes(pickle.dumps({np.int64(ROW_IMAGES[r]): i for i, r in enumerate(rows)}))
    return path, index


def tsv_line(image_id, boxes, feats, width=WIDTH, height=HEIGHT) -> str:
    b64 = [base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode() for a in (boxes, feats)]
    return "\t".join(map(str, [image_id, width, height, len(boxes), *b64])) + "\n"


def write_tsv(path: Path) -> Path:
    feats = features()
    path.write_text("".join(tsv_line(img, BOXES, feats[i]) for i, img in enumerate(ROW_IMAGES)))
    return path


def write_hints(path: Path, hints=None) -> Path:
    hints = HINTS if hints is None else hints
    if path.suffix == ".json":
        path.write_text(json.dumps({str(k): v for k, v in hints.items()}))
    else:
        path.write_bytes(pickle.dumps({k: np.array(v, np.float32) for k, v in hints.items()}))
    return path


def vqa_args(tmp: Path, out: Path, *extra, hints_name="hints.json") -> list:
    """`cfbuild vqa` arguments over the fixture written under `tmp` (h5 features, JSON hints)."""
    vqacp = write_vqacp(tmp / "vqacp")
    feats, index = write_h5(tmp / "feats.h5")
    hints = write_hints(tmp / hints_name)
    return ["vqa", "--vqacp-dir", str(vqacp), "--features", str(feats), "--imgid2idx", str(index),
            "--hints", str(hints), "--val-size", "1", "--min-answer-count", "2", "--out", str(out), *extra]


def cfbuild(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def build(tmp_path, *extra, name="v.h5", hints_name="hints.json"):
    out = tmp_path / name
    code, stdout, stderr = cfbuild(*vqa_args(tmp_path, out, *extra, hints_name=hints_name))
    assert code == 0, stderr
    assert verify_store(out, allow_external=True) is None
    return out
