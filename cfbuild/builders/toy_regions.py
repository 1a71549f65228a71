"""A toy VQA store (input kind `regions`, soft labels) where a question word is a shortcut.

Each image has R regions; region r shows one object type (one-hot) and one colour (one-hot),
plus noise. The question names an object type ("what color is the <object> <hint>"); the
answer is the colour of the region showing that object. The `<hint>` word names the answer
with probability `spurious` in train and val, and is random in test. Counterfactuals mask the
relevant region (human attention: 1 on it, 0 elsewhere) and have no answer; `test_focused`
keeps only the relevant region.
"""

from __future__ import annotations

import numpy as np

from cfbuild import __version__
from cfbuild.builders.vqa import CF_KIND, answer_type_subsets, focused, with_counterfactuals
from cfbuild.builders.vqa_attention import Attention
from cfpairs.store import StoreWriter
from cfpairs.outputs import check_output

COLOURS = ["red", "green", "blue", "yellow"]
OBJECTS = ["ball", "cup", "hat", "box"]
VOCAB = ["<pad>", "<unk>", "what", "color", "is", "the"] + OBJECTS + [f"hint-{c}" for c in COLOURS]


def _images(rng, n: int, noise: float, dim_noise: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, R, D) features, (n, R) object of each region, (n, R) colour of each region."""
    regions = len(OBJECTS)
    objects = np.argsort(rng.random((n, regions)), axis=1)  # each object once per image
    colours = rng.integers(0, len(COLOURS), (n, regions))
    eye_o, eye_c = np.eye(len(OBJECTS)), np.eye(len(COLOURS))
    feats = np.concatenate([eye_o[objects], eye_c[colours], np.zeros((n, regions, dim_noise))], axis=2)
    feats += noise * rng.normal(size=feats.shape)
    return feats.astype(np.float32), objects, colours


def _split(rng, objects: np.ndarray, colours: np.ndarray, first_image: int, spurious: float,
           prefix: str) -> tuple[dict, np.ndarray]:
    """One question per image (images first_image.. in /regions); returns examples and relevant regions."""
    n, regions = objects.shape
    asked = rng.integers(0, len(OBJECTS), n)
    relevant = np.argmax(objects == asked[:, None], axis=1)
    answer = colours[np.arange(n), relevant]
    hint = np.where(rng.random(n) < spurious, answer, rng.integers(0, len(COLOURS), n))
    tokens = np.stack([np.full(n, 2), np.full(n, 3), np.full(n, 4), np.full(n, 5), 6 + asked,
                       6 + len(OBJECTS) + hint], axis=1).astype(np.int32)
    text = np.array([f"what color is the {OBJECTS[a]} hint-{COLOURS[h]}" for a, h in zip(asked, hint)], dtype=object)
    full = np.ones((n, regions), bool)
    ex = {"id": np.array([f"{prefix}-{i}" for i in range(n)], dtype=object), "is_counterfactual": np.zeros(n, bool),
          "label_index": answer[:, None].astype(np.int32), "label_score": np.ones((n, 1), np.float32),
          "text": text, "tokens": tokens, "length": np.full(n, tokens.shape[1], np.int32),
          "answer_type": np.array(["other"] * n, dtype=object), "image_row": first_image + np.arange(n),
          "region_mask": full}
    return ex, relevant


def _attention(relevant: np.ndarray, regions: int, has: np.ndarray) -> Attention:
    """Human attention as the VQA builder sees it: 1 on the relevant region, 0 elsewhere."""
    return Attention(np.eye(regions, dtype=np.float32)[relevant], has)


def build_toy_regions(out, *, n: int = 1000, seed: int = 0, spurious: float = 0.9, cf_rate: float = 1.0,
                      noise: float = 0.3, dim_noise: int = 4, force: bool = False) -> None:
    """`n` training questions, n/4 val, n/2 test (+ test_focused); one image per question."""
    check_output(out, "store", force)  # before any work
    rng = np.random.default_rng(seed)
    sizes = {"train": n, "val": max(1, n // 4), "test": max(1, n // 2)}
    feats, objects, colours = _images(rng, sum(sizes.values()), noise, dim_noise)
    boxes = np.tile(np.array([[0, 0, 1, 1]], np.float32), (len(feats), len(OBJECTS), 1))
    params = {"n": n, "seed": seed, "spurious": spurious, "cf_rate": cf_rate, "noise": noise, "dim_noise": dim_noise}
    with StoreWriter(out, task="toy-vqa", input_kind="regions", label_kind="soft", class_names=COLOURS,
                     build={"command": "cfbuild toy-vqa", "parameters": params, "version": __version__},
                     sources=[], force=force) as writer:
        writer.write_vocab(VOCAB)
        writer.write_regions(np.arange(len(feats)), boxes, feats)
        first = 0
        for name, size in sizes.items():
            part = slice(first, first + size)
            ex, relevant = _split(rng, objects[part], colours[part], first, spurious if name != "test" else 0.0, name)
            first += size
            real = np.ones((size, len(OBJECTS)), bool)
            if name == "test":
                writer.write_split("test", ex, subsets=answer_type_subsets(ex["answer_type"]))
                kept, _ = focused(ex, _attention(relevant, len(OBJECTS), np.ones(size, bool)), real, 0.8)
                writer.write_split("test_focused", kept, subsets=answer_type_subsets(kept["answer_type"]))
            else:
                att = _attention(relevant, len(OBJECTS), rng.random(size) < cf_rate)
                ex, pairs, _ = with_counterfactuals(ex, att, real, 0.2)
                writer.write_split(name, ex, pairs, [CF_KIND] * len(pairs),
                                   subsets=answer_type_subsets(ex["answer_type"]))
