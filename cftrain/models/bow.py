"""IMDb's model: learned word embeddings averaged over a review's real tokens, linear to one logit;
its hand-fused ensemble: one embedding table of width N x D (bench/ensemble.py: sparse AdaDelta
over one fused table, where vmap has no sparse gradients)."""

from __future__ import annotations

import torch
from torch import nn

from cftrain.ensemble import FusedEnsemble, StackedLinear
from cftrain.models import PairModel, init_embedding, mean_embedding, register
from cftrain.options import EMBED_DIM, EMBED_INIT, EMBED_SCALE


@register("bow")
class BagOfWords(PairModel):
    """IMDb: learned 50-d embeddings averaged over the real tokens, linear to one logit."""
    input_kinds = ("text",)
    options = (EMBED_DIM, EMBED_INIT, EMBED_SCALE)

    def __init__(self, vocab_size: int, n_outputs: int = 1, embed_dim: int = EMBED_DIM.default, sparse: bool = False,
                 embed_init: str = EMBED_INIT.default, embed_scale: float | None = EMBED_SCALE.default):
        super().__init__()
        # sparse: a step's gradient covers only the rows its batch uses (cftrain.optim.LazyAdadelta)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0, sparse=sparse)
        self.out = nn.Linear(embed_dim, n_outputs)
        init_embedding(self.embed, embed_init, embed_scale)

    def encode(self, batch):
        return mean_embedding(self.embed, batch["tokens"], batch["length"])

    def head(self, x, batch):
        return self.out(x)



class FusedBagOfWords(FusedEnsemble):
    """One embedding table of width N x D (member k: columns k*D..(k+1)*D), averaged once."""
    member_dims = {"embed.weight": 1}  # member k: columns k*D..(k+1)*D

    def __init__(self, members: list):
        super().__init__(members)
        first = members[0].embed
        self.dim = first.embedding_dim
        self.embed = nn.Embedding(first.num_embeddings, self.n * self.dim, padding_idx=0, sparse=first.sparse)
        with torch.no_grad():
            self.embed.weight.copy_(torch.cat([m.embed.weight for m in members], dim=1))
        self.out = StackedLinear([m.out for m in members])

    def encode(self, batch):
        x = mean_embedding(self.embed, batch["tokens"], batch["length"])
        return x.view(x.shape[0], self.n, self.dim)

    def head(self, x, batch):
        return self.out(x)

    def unfuse(self) -> list:
        with torch.no_grad():
            for k, m in enumerate(self.members):
                m.embed.weight.copy_(self.embed.weight[:, k * self.dim:(k + 1) * self.dim])
        self.out.copy_to([m.out for m in self.members])
        return self.members




BagOfWords.fused = FusedBagOfWords
