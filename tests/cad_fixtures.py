"""Small hand-made CAD releases in the original folder layout (TSV with header)."""

from __future__ import annotations

import csv
from pathlib import Path


def write_tsv(path: Path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


SENT = [("Negative", "A dull, boring film.<br /><br />Skip it.", "1"),
        ("Positive", "A bright, gripping film.<br /><br />See it.", "1"),
        ("Positive", "Great \"acting\", great story.", "2"),
        ("Negative", "Bad acting, bad story.", "2"),
        ("Negative", "Same words here", "3"),
        ("Positive", "Same <br />words here", "3")]


def mini_imdb(root: Path, rows=SENT, orig_texts=None) -> Path:
    """A release under root/cad (returned): outputs go beside it, never inside an input folder."""
    root = root / "cad"
    write_tsv(root / "sentiment/combined/paired/train_paired.tsv", ["Sentiment", "Text", "batch_id"], rows)
    write_tsv(root / "sentiment/combined/paired/dev_paired.tsv", ["Sentiment", "Text", "batch_id"], rows[:4])
    originals = orig_texts or [SENT[0][1], SENT[3][1], SENT[4][1]]
    write_tsv(root / "sentiment/orig/train.tsv", ["Sentiment", "Text"], [("x", t) for t in originals])
    return root


NLI_HEADER = ["sentence1", "sentence2", "gold_label"]
ORIG = [("A man plays a guitar.", "A man makes music.", "entailment")]
PREMISE = [("A man holds a guitar.", "A man makes music.", "neutral"),
           ("A man breaks a guitar.", "A man makes music.", "contradiction")]
HYPO = [("A man plays a guitar.", "A man is silent.", "contradiction"),
        ("A man plays a guitar.", "A man plays jazz.", "neutral")]


def mini_snli(root: Path, orig=ORIG, premise=PREMISE, hypo=HYPO) -> Path:
    root = root / "cad"
    write_tsv(root / "NLI/original/train.tsv", NLI_HEADER, orig)
    write_tsv(root / "NLI/revised_premise/train.tsv", NLI_HEADER, premise)
    write_tsv(root / "NLI/revised_hypothesis/train.tsv", NLI_HEADER, hypo)
    return root
