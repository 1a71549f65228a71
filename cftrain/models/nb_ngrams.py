"""An NB-weighted n-gram model (after Wang & Manning's NBSVM, ACL 2012), with a learned
representation so that GS has a space to act in: each distinct word or hashed n-gram f of a text
(`cftrain.models.ngrams`) contributes its learned embedding e_f (--ngram-dim wide) scaled by its
Naive Bayes log-count ratio r_f, x = mean_f r_f e_f, and a linear map gives the logits. x is the GS space.

r_f = log((a + p_f) / |a + p|_1) - log((a + q_f) / |a + q|_1), p_f and q_f the numbers of
positive and negative training texts holding f, a = 1: computed once per run from the rows the
method trains on (`prepare`; originals only for the "without edited data" row), kept in the
model's state (so model.pt rebuilds it), never learned. With more than two classes, r_f is the
largest |ratio| of one class against the rest (how much f tells about some class): e_f's draw is
symmetric, so only r_f's size matters to what the model can learn, not its sign. Trained as an
ensemble by the generic forms (`cftrain.ensemble`): this file is the whole model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cftrain.models import RowGather, register
from cftrain.models.fasttext import FastText
from cftrain.models.ngrams import NGRAM_BUCKETS, NGRAM_DIM, NGRAMS, ngram_ids
from cftrain.options import EMBED_INIT, EMBED_SCALE

SMOOTHING = 1.0  # Wang & Manning's alpha
CHUNK = 512      # texts hashed at a time while counting (bounds the memory of long reviews)


@register("nb-ngrams")
class NBNgrams(FastText):
    """fasttext's mean with each n-gram's embedding scaled by its Naive Bayes log-count ratio, linear."""

    def __init__(self, vocab_size: int, n_outputs: int = 1, ngrams: int = NGRAMS.default,
                 ngram_buckets: int = NGRAM_BUCKETS.default, ngram_dim: int = NGRAM_DIM.default, sparse: bool = False,
                 embed_init: str = EMBED_INIT.default, embed_scale: float | None = EMBED_SCALE.default):
        super().__init__(vocab_size, n_outputs, ngrams, ngram_buckets, ngram_dim, sparse, embed_init, embed_scale)
        self.register_buffer("ratios", torch.zeros(self.embed.num_embeddings))

    def _ids(self, tokens, length):
        return ngram_ids(tokens, length, self.vocab_size, self.ngrams, self.buckets)

    def prepare(self, train, shared: dict) -> None:
        """The log-count ratios of `train`'s rows (`cftrain.data.SplitTensors`), counted once for
        every member of the run (`shared`)."""
        key = ("nb-ratios", self.vocab_size, self.ngrams, self.buckets)
        if key not in shared:
            shared[key] = log_count_ratios(train, self._ids, self.ratios.numel())
        self.ratios.copy_(shared[key])

    def encode(self, batch):
        ids, lengths = self._ids(batch["tokens"], batch["length"])
        if hasattr(self.embed, "bag_mean"):  # a member's columns of an ensemble's shared table: one lookup
            return self.embed.bag_mean(ids, lengths, self._weighted_mean)
        return self._weighted_mean(self.embed, ids, lengths)

    def _weighted_mean(self, embed: nn.Embedding, ids, lengths):
        """mean_f r_f e_f over each row's first `lengths` ids, one weighted bag per row; sparse
        tables gather the batch's rows once (`RowGather`: one gradient row each)."""
        real = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]
        flat = ids[real]
        offsets = (torch.cumsum(lengths, 0) - lengths).long()
        weights = self.ratios[flat]
        if embed.sparse:
            rows, flat = torch.unique(flat, return_inverse=True)
            table = RowGather.apply(embed.weight, rows)
        else:
            table = embed.weight
        summed = F.embedding_bag(flat, table, offsets, mode="sum", per_sample_weights=weights.to(table.dtype))
        return summed / lengths.clamp(min=1).to(summed.dtype)[:, None]

    def head(self, x, batch):
        return self.out(x)


def log_count_ratios(train, ids_of, rows: int) -> torch.Tensor:
    """r (rows,): Naive Bayes log-count ratios (binary presence) of the positive class over the
    negative one, or with more classes each n-gram's largest |ratio| of one class over the rest."""
    binary = train.targets.shape[1] == 1
    labels = (train.targets[:, 0] > 0.5).long() if binary else train.labels.long()
    classes = 2 if binary else train.targets.shape[1]
    counts = torch.zeros(classes, rows, dtype=torch.float64)
    tokens, length = train.inputs["tokens"], train.inputs["length"]
    for start in range(0, len(labels), CHUNK):
        ids, lengths = ids_of(tokens[start:start + CHUNK], length[start:start + CHUNK])
        real = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]) & (labels[start:start + CHUNK, None] >= 0)
        side = labels[start:start + CHUNK, None].expand_as(ids)[real]
        counts.index_put_((side, ids[real]), torch.ones(int(real.sum()), dtype=torch.float64), accumulate=True)
    counts[:, 0] = 0.0  # padding never counts
    if binary:
        return _ratio(counts[1], counts[0]).float()
    return torch.stack([_ratio(counts[c], counts.sum(0) - counts[c]) for c in range(classes)]).abs().amax(0).float()


def _ratio(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    p, q = p + SMOOTHING, q + SMOOTHING
    return torch.log(p / p.sum()) - torch.log(q / q.sum())
