"""A toy VQA store (input kind `regions`, soft labels) where a question word is a shortcut.

Each image has R regions; region r shows one object type (one-hot) and one colour (one-hot),
plus noise. The question names an object type ("what color is the <object> <hint>"); the
answer is the colour of the region showing that object. The `<hint>` word names the answer
with probability `spurious` in train and val, and is random in test. Counterfactuals mask the
relevant region (human attention: 1 on it, 0 elsewhere) and have no answer; `test_focused`
keeps only the relevant region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfbuild.builders.vqa import CF_KIND, answer_type_subsets, focused, with_counterfactuals
from cfbuild.builders.vqa_attention import Attention
from cfbuild.protocol import SEED_MAX, Builder, option, register, run_builder

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


@dataclass
class ToyVqaOptions:
    n: int = option(1000, help="Training questions (val gets n/4, test n/2); one image each.", low=4)
    seed: int = option(0, help="Seed of every draw.", low=0, high=SEED_MAX)
    spurious: float = option(0.9, help="P(the question's hint word names the answer) in train and val; random in "
                                       "test.", low=0, high=1)
    cf_rate: float = option(1.0, help="Share of train/val questions given a masked counterfactual.", low=0, high=1)
    noise: float = option(0.3, help="Feature noise.", low=0, cli=False)
    dim_noise: int = option(4, help="Noise dimensions of each region's features.", low=0, cli=False)


@register
class ToyVqa(Builder):
    name, Options = "toy-vqa", ToyVqaOptions
    summary = "A toy VQA store (regions, soft labels) where a question word is a shortcut."
    example = "cfbuild toy-vqa --out toy-vqa.h5 && cftrain table toy-vqa.h5 --out runs/toy-vqa"
    splits = ("train", "val", "test", "test_focused")

    def build(self, o, driver):
        """`n` training questions, n/4 val, n/2 test (+ test_focused); one image per question."""
        n, spurious = o.n, o.spurious
        rng = np.random.default_rng(o.seed)
        sizes = {"train": n, "val": max(1, n // 4), "test": max(1, n // 2)}
        feats, objects, colours = _images(rng, sum(sizes.values()), o.noise, o.dim_noise)
        boxes = np.tile(np.array([[0, 0, 1, 1]], np.float32), (len(feats), len(OBJECTS), 1))
        with driver.writer(task="toy-vqa", input_kind="regions", label_kind="soft", class_names=COLOURS) as writer:
            self.write(writer, rng, feats, boxes, objects, colours, sizes, spurious, o.cf_rate)

    @staticmethod
    def write(writer, rng, feats, boxes, objects, colours, sizes, spurious, cf_rate) -> None:
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


def build_toy_regions(out, force: bool = False, **options) -> dict:
    """Write the toy VQA store (`ToyVqaOptions`)."""
    return run_builder("toy-vqa", out, force, **options)
