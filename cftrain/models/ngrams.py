"""Word n-grams for the text models, hashed at training time from the store's tokens (no model of
its own: the helpers and options that `fasttext` and `nb_ngrams` share).

Why hashed here and not kept in the store: a store holds one word vocabulary (`/vocab`), and
every text store built so far can train n-gram models as it is; the bigrams of a 20,000-word
vocabulary are hashed into `--ngram-buckets` rows after the words (fastText's trick), so the
embedding table's size is fixed before any data is read and collisions are rare (CAD IMDb train
has about 150,000 distinct bigrams for 262,144 buckets). Each text is a *set* of n-grams (binary
presence, as the Naive Bayes reference counts them): a phrase repeated in a review counts once.
"""

from __future__ import annotations

import torch

from cftrain.options import Option

NGRAMS = Option("ngrams", int, 2, "Longest word n-gram of the n-gram models (1: words only; 2: words and "
                "bigrams).", low=1, high=4)
NGRAM_BUCKETS = Option("ngram_buckets", int, 2 ** 18, "Rows the n-gram models hash word n-grams longer than one "
                       "into (after the vocabulary's rows).", low=1, high=2 ** 26)

NGRAM_DIM = Option("ngram_dim", int, 50, "Width of the n-gram models' learned embeddings (the GS space).", low=1,
                   high=4096, sweep={"int": [8, 64]})

_PRIME = 1_000_003  # n-gram hash: ((t1 * P + t2) * P + t3 ...) mod buckets; token ids are < 2^31


_last: list = []  # the last call's (key, inputs, result): an ensemble's members hash each batch once


def ngram_ids(tokens: torch.Tensor, length: torch.Tensor, vocab_size: int, n: int, buckets: int) -> tuple:
    """(ids (B, K), lengths (B,)): each text's distinct n-grams, words as their token id and longer
    n-grams as vocab_size + hash mod buckets, first `lengths[b]` columns of row b real, 0 after.
    The same tensors for the same inputs called again (the members of an ensemble in turn), so a
    shared embedding table's lookup is made once for all of them (`cftrain.ensemble.SharedTables`)."""
    key = (*(_identity(t) for t in (tokens, length)), vocab_size, n, buckets)
    if _last and _last[0][0] == key:
        return _last[0][2]
    result = _hashed(tokens, length, vocab_size, n, buckets)
    _last[:] = [(key, (tokens, length), result)]  # the inputs kept: their memory is not reused meanwhile
    return result


def _identity(t: torch.Tensor) -> tuple:
    return (t.data_ptr(), tuple(t.shape), t.stride(), t.storage_offset(), t._version, str(t.device))


def _hashed(tokens: torch.Tensor, length: torch.Tensor, vocab_size: int, n: int, buckets: int) -> tuple:
    """Vectorised: the n-grams of every row side by side, sorted, repeats and padding pushed past the
    end by a second sort."""
    tokens = tokens.long()
    width = tokens.shape[1]
    position = torch.arange(width, device=tokens.device)[None, :]
    grams = [torch.where(position < length[:, None], tokens, 0)]
    for k in range(2, n + 1):
        if width < k:
            break
        hashed = tokens[:, :width - k + 1].clone()
        for j in range(1, k):
            hashed = (hashed * _PRIME + tokens[:, j:width - k + 1 + j]) % buckets
        starts = position[:, :width - k + 1] < (length[:, None] - k + 1)
        grams.append(torch.where(starts, hashed + vocab_size, 0))
    ids = torch.cat(grams, dim=1)
    past = vocab_size + buckets  # larger than any id: padding and repeats sort after the real ones
    ids = torch.where(ids == 0, past, ids).sort(dim=1).values
    repeat = torch.zeros_like(ids, dtype=torch.bool)
    repeat[:, 1:] = ids[:, 1:] == ids[:, :-1]
    ids = torch.where(repeat, past, ids).sort(dim=1).values
    lengths = (ids < past).sum(dim=1)
    ids = ids[:, :max(int(lengths.max()) if len(lengths) else 0, 1)]
    return torch.where(ids == past, 0, ids), lengths
