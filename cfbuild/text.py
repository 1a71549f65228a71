"""Tokenisation and vocabularies for text stores (spaCy's blank English tokenizer)."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import numpy as np

PAD, UNK = "<pad>", "<unk>"
MARKUP = re.compile(r"<br\s*/?>", re.IGNORECASE)


@lru_cache(maxsize=1)
def _tokenizer():
    import spacy

    return spacy.blank("en").tokenizer  # rules only: no model download


def tokenize(texts) -> list[list[str]]:
    """Lower-cased tokens of each text, `<br />` markup dropped, whitespace tokens skipped."""
    cleaned = (MARKUP.sub(" ", t).lower() for t in texts)
    return [[tok.text for tok in doc if not tok.is_space] for doc in _tokenizer().pipe(cleaned, batch_size=256)]


def build_vocab(token_lists, size: int) -> list[str]:
    """Row 0 padding, row 1 unknown, then the `size` most frequent tokens (ties by spelling)."""
    counts = Counter(tok for tokens in token_lists for tok in tokens)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [PAD, UNK] + [tok for tok, _ in ranked[:size]]


def encode(token_lists, vocab: list[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, L) int32 token ids (0-padded) and (N,) lengths; L = max_tokens, or the longest if 0."""
    index = {tok: i for i, tok in enumerate(vocab)}
    width = max_tokens or max((len(t) for t in token_lists), default=1)
    ids = np.zeros((len(token_lists), max(width, 1)), np.int32)
    lengths = np.zeros(len(token_lists), np.int32)
    for row, tokens in enumerate(token_lists):
        kept = [index.get(tok, 1) for tok in tokens[:width]]
        ids[row, :len(kept)] = kept
        lengths[row] = len(kept)
    return ids, lengths


def jaccard(a, b) -> float:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0
