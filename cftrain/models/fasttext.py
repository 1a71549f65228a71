"""A fastText-style text model (Joulin et al., EACL 2017): learned embeddings of words and hashed
word n-grams (`cftrain.models.ngrams`), averaged over each text's distinct n-grams, linear to the
logits. x, the space GS works in, is that average. Trained as an ensemble by the generic forms
(`cftrain.ensemble`: one shared table for every member's columns): this file is the whole model."""

from __future__ import annotations

from torch import nn

from cftrain.models import PairModel, init_embedding, mean_embedding, register
from cftrain.models.ngrams import NGRAM_BUCKETS, NGRAM_DIM, NGRAMS, ngram_ids
from cftrain.options import EMBED_INIT, EMBED_SCALE


@register("fasttext")
class FastText(PairModel):
    """Mean of learned word and n-gram embeddings (--ngram-dim wide), linear."""
    input_kinds = ("text",)
    options = (NGRAMS, NGRAM_BUCKETS, NGRAM_DIM, EMBED_INIT, EMBED_SCALE)

    def __init__(self, vocab_size: int, n_outputs: int = 1, ngrams: int = NGRAMS.default,
                 ngram_buckets: int = NGRAM_BUCKETS.default, ngram_dim: int = NGRAM_DIM.default, sparse: bool = False,
                 embed_init: str = EMBED_INIT.default, embed_scale: float | None = EMBED_SCALE.default):
        super().__init__()
        self.vocab_size, self.ngrams, self.buckets = vocab_size, ngrams, ngram_buckets
        self.vmappable = not sparse  # a sparse table's rows are gathered by an autograd.Function vmap cannot run
        rows = vocab_size + (ngram_buckets if ngrams > 1 else 0)
        self.embed = nn.Embedding(rows, ngram_dim, padding_idx=0, sparse=sparse)
        self.out = nn.Linear(ngram_dim, n_outputs)
        init_embedding(self.embed, embed_init, embed_scale)

    def encode(self, batch):
        ids, lengths = ngram_ids(batch["tokens"], batch["length"], self.vocab_size, self.ngrams, self.buckets)
        return mean_embedding(self.embed, ids, lengths)

    def head(self, x, batch):
        return self.out(x)
