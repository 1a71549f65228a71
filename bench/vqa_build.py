"""`cfbuild vqa` at VQA-CP v2 scale on synthetic inputs: build time / plain json.load time, peak RSS.

Writes 438,183 train and 219,928 test questions with 10 answers each over 123,287 images,
h5 features (36 boxes, a small feature width: linked mode does not read features), and
hints for 7% of the questions; then times, each in its own process, the linked build and a
plain `json.load` of the four JSON files. Goal: ratio <= 3, peak RSS <= 2 GB.

Usage: python bench/vqa_build.py [--scale 1.0] [--workdir DIR] [--smoke]  (CI runs --smoke only)
Last line: ratio=<float> peak_rss_mb=<int>
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import build_and_baseline  # noqa: E402

TRAIN, TEST, IMAGES, BOXES, DIM = 438_183, 219_928, 123_287, 36, 4
WORDS = "what color is the man woman dog cat shirt bus car how many are there on table of in this".split()


def write_split(folder: Path, split: str, first_qid: int, n: int, rng, answers: list) -> np.ndarray:
    qids = first_qid + np.arange(n)
    images = rng.integers(0, IMAGES, n) + 1
    lengths = rng.integers(4, 12, n)
    questions = [{"question_id": int(q), "image_id": int(i), "coco_split": "train2014",
                  "question": " ".join(rng.choice(WORDS, k)) + "?"} for q, i, k in zip(qids, images, lengths)]
    (folder / f"vqacp_v2_{split}_questions.json").write_text(json.dumps(questions))
    del questions
    picks = np.minimum(rng.zipf(1.3, (n, 10)), len(answers)) - 1
    with open(folder / f"vqacp_v2_{split}_annotations.json", "w") as fh:
        fh.write("[")
        for row, (q, i) in enumerate(zip(qids, images)):
            given = [answers[a] for a in picks[row]]
            item = {"question_id": int(q), "image_id": int(i), "question_type": "what color",
                    "answer_type": ("yes/no", "number", "other")[row % 3], "multiple_choice_answer": given[0],
                    "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                                for k, a in enumerate(given)]}
            fh.write(("," if row else "") + json.dumps(item))
        fh.write("]")
    return qids


def write_inputs(folder: Path, scale: float) -> dict:
    rng = np.random.default_rng(0)
    answers = [f"answer {k}" for k in range(3000)] + ["yes", "no", "2", "Two", "the red one"]
    vqacp = folder / "vqacp"
    vqacp.mkdir()
    qids = np.concatenate([write_split(vqacp, "train", 1, int(TRAIN * scale), rng, answers),
                           write_split(vqacp, "test", 10 ** 8, int(TEST * scale), rng, answers)])
    n_images = IMAGES
    boxes = np.sort(rng.uniform(0, 500, (n_images, BOXES, 4)).astype(np.float32), axis=-1)
    with h5py.File(folder / "feats.h5", "w") as h5:
        h5.create_dataset("image_features", data=rng.normal(size=(n_images, BOXES, DIM)).astype(np.float32))
        h5.create_dataset("image_bb", data=boxes)
    ids = rng.permutation(n_images) + 1
    (folder / "feats.pkl").write_bytes(pickle.dumps({int(i): row for row, i in enumerate(ids)}))
    hinted = rng.choice(qids, int(0.07 * len(qids)), replace=False)
    scores = rng.beta(0.5, 2.0, (len(hinted), BOXES)).astype(np.float32)
    (folder / "hints.pkl").write_bytes(pickle.dumps(dict(zip(hinted.tolist(), scores))))
    return {"vqacp": vqacp, "features": folder / "feats.h5", "index": folder / "feats.pkl",
            "hints": folder / "hints.pkl"}


JSON_LOAD = """
import json, sys, time
start = time.perf_counter()
for path in sys.argv[1:]:
    with open(path) as fh:
        json.load(fh)
print(time.perf_counter() - start)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of VQA-CP's question counts")
    parser.add_argument("--workdir", type=Path, help="where to write the inputs (default: a temporary folder)")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, seconds (CI runs it)")
    args = parser.parse_args()
    if args.smoke:
        args.scale = 0.002
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        inputs = write_inputs(tmp, args.scale)
        print(f"inputs written in {time.perf_counter() - start:.1f} s", flush=True)
        out = tmp / "vqacp.h5"
        files = sorted(str(p) for p in inputs["vqacp"].glob("*.json"))
        build_s, peak_mb, load_s = build_and_baseline(
            ["vqa", "--vqacp-dir", inputs["vqacp"], "--features", inputs["features"], "--imgid2idx", inputs["index"],
             "--hints", inputs["hints"], "--out", out, *(["--val-size", 100] if args.smoke else [])], JSON_LOAD, files)
        with h5py.File(out) as h5:
            linked = isinstance(h5["regions"].get("features", getlink=True), h5py.ExternalLink)
        json_mb = sum(Path(f).stat().st_size for f in files) / 1e6
        print(f"json_mb={json_mb:.0f} features_mb={inputs['features'].stat().st_size / 1e6:.0f} "
              f"store_mb={out.stat().st_size / 1e6:.1f} features_linked={linked}")
        print(f"build_s={build_s:.2f} json_load_s={load_s:.2f}")
        print(f"ratio={build_s / load_s:.2f} peak_rss_mb={peak_mb}")


if __name__ == "__main__":
    main()
