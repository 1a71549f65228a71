"""SNLI's model: frozen word vectors projected, averaged and batch-normalised for premise and
hypothesis, then three ReLU layers; its hand-fused ensemble looks the vectors up once for every
member (batch norm keeps running statistics, which vmap cannot update in place)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from cftrain.ensemble import FusedEnsemble, StackedLinear
from cftrain.models import PairModel, frozen_or_learned, init_embedding, mean_embedding, register
from cftrain.options import EMBED_INIT, EMBED_SCALE, EMBEDDINGS, Option

EMBED_DIM = Option("nli_embed_dim", int, 300, "Width of nli-bow's word embeddings when learned (without "
                   "--embeddings: GloVe's width).", low=1, high=4096)
PROJECTION = Option("nli_projection", int, 50, "Width of nli-bow's projection of each word vector (the GS space "
                    "holds two of them).", low=1, high=4096)
WIDTH = Option("nli_width", int, 100, "Width of each of nli-bow's three classifier layers.", low=1, high=4096)
GS_SPACE = Option("gs_space", str, "hidden", "Where GS supervises the gradient: hidden (the batch-normalised "
                  "projections (--nli-projection wide) of premise and hypothesis, averaged over their words) or input (the averaged frozen "
                  "word vectors themselves, the projection moved after the average).", choices=("hidden", "input"))


@register("nli-bow")
class NliBagOfWords(PairModel):
    """SNLI: frozen word vectors -> linear/ReLU to 50 -> mean -> batchnorm, for premise and hypothesis.

    GS space: the concatenated, batch-normalised 100-d vector. Batchnorm sits in
    `encode`, before x: the head has no batch statistics, so each row's gradient
    d logit / d x is its own and pair members never mix into each other's g.
    Both members of a pair are normalised with the same statistics, so t = x_j - x_i
    is the difference of their averaged projections, rescaled per feature.
    """
    input_kinds = ("text_pair",)
    options = (EMBEDDINGS, EMBED_DIM, EMBED_INIT, EMBED_SCALE, PROJECTION, WIDTH, GS_SPACE)
    vmappable = False  # batch norm's running statistics; embedding_bag has no vmap rule either

    def __init__(self, vocab_size: int, n_outputs: int = 3, vectors: torch.Tensor | None = None,
                 nli_width: int = WIDTH.default, nli_projection: int = PROJECTION.default, sparse: bool = False,
                 gs_space: str = GS_SPACE.default, embeddings: str | None = EMBEDDINGS.default,
                 nli_embed_dim: int = EMBED_DIM.default, embed_init: str = EMBED_INIT.default,
                 embed_scale: float | None = EMBED_SCALE.default):
        super().__init__()
        if vectors is None:
            warnings.warn(f"nli-bow without --embeddings: learning {nli_embed_dim}-d word embeddings from scratch")
        width, dim = nli_width, nli_projection
        self.embed = frozen_or_learned(vocab_size, nli_embed_dim, vectors, embeddings, sparse)
        self.gs_space = gs_space
        self.project = nn.Sequential(nn.Linear(self.embed.embedding_dim, dim), nn.ReLU())
        if gs_space == "input":  # the average before the projection; per-row norms: no batch statistics in head
            self.fusable = False  # (vmap would run embedding_bag member by member anyway: sequential)
            self.project_hypothesis = nn.Sequential(nn.Linear(self.embed.embedding_dim, dim), nn.ReLU())
            self.norm_premise, self.norm_hypothesis = nn.LayerNorm(dim), nn.LayerNorm(dim)
        else:
            self.norm_premise, self.norm_hypothesis = nn.BatchNorm1d(dim), nn.BatchNorm1d(dim)
        layers, size = [], 2 * dim
        for _ in range(3):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        self.classifier = nn.Sequential(*layers, nn.Linear(size, n_outputs))
        init_embedding(self.embed, embed_init, embed_scale)

    def encode(self, batch):
        if self.gs_space == "input":  # x: the averaged word vectors of premise and hypothesis
            return torch.cat([mean_embedding(self.embed, batch[f"{side}_tokens"], batch[f"{side}_length"])
                              for side in ("premise", "hypothesis")], dim=1)
        projected = lambda tokens, length: mean_embedding(lambda t: self.project(self.embed(t)), tokens, length)
        premise = self.norm_premise(projected(batch["premise_tokens"], batch["premise_length"]))
        hypothesis = self.norm_hypothesis(projected(batch["hypothesis_tokens"], batch["hypothesis_length"]))
        return torch.cat([premise, hypothesis], dim=1)

    def head(self, x, batch):
        if self.gs_space == "input":
            premise, hypothesis = x.split(self.embed.embedding_dim, dim=1)
            x = torch.cat([self.norm_premise(self.project(premise)),
                           self.norm_hypothesis(self.project_hypothesis(hypothesis))], dim=1)
        return self.classifier(x)



def _stacked_norm(norms: list) -> nn.BatchNorm1d:
    """N batch norms of width d as one of width N x d: per-feature statistics are per member."""
    fused = nn.BatchNorm1d(len(norms) * norms[0].num_features, eps=norms[0].eps, momentum=norms[0].momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(fused, name).copy_(torch.cat([getattr(n, name) for n in norms]))
        fused.num_batches_tracked.copy_(norms[0].num_batches_tracked)
    return fused


def _norm_to(fused: nn.BatchNorm1d, norms: list) -> None:
    d = norms[0].num_features
    with torch.no_grad():
        for k, norm in enumerate(norms):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(norm, name).copy_(getattr(fused, name)[k * d:(k + 1) * d])
            norm.num_batches_tracked.copy_(fused.num_batches_tracked)



class FusedNliBagOfWords(FusedEnsemble):
    """Frozen word vectors looked up once for all members (learned ones: a table of width N x E);
    projections, batch norms and classifiers stacked per member."""
    member_dims = {"embed.weight": 1}  # member k: columns k*D..(k+1)*D

    def __init__(self, members: list):
        super().__init__(members)
        first = members[0].embed
        self.frozen = not first.weight.requires_grad
        self.embed_dim = first.embedding_dim
        if self.frozen:
            self.embed = nn.Embedding.from_pretrained(first.weight.detach(), freeze=True, padding_idx=0)
        else:
            self.embed = nn.Embedding(first.num_embeddings, self.n * self.embed_dim, padding_idx=0, sparse=first.sparse)
            with torch.no_grad():
                self.embed.weight.copy_(torch.cat([m.embed.weight for m in members], dim=1))
        self.project = StackedLinear([m.project[0] for m in members])
        self.norm_premise = _stacked_norm([m.norm_premise for m in members])
        self.norm_hypothesis = _stacked_norm([m.norm_hypothesis for m in members])
        self.layers = nn.ModuleList(StackedLinear([m.classifier[i] for m in members])
                                    for i in range(len(members[0].classifier))
                                    if isinstance(members[0].classifier[i], nn.Linear))

    def _projected(self, tokens, length):
        """(B, N, dim): each member's projection, ReLU, mean over the real tokens."""
        return mean_embedding(self._project_tokens, tokens, length)

    def _project_tokens(self, tokens):
        """(T, N, dim) for a flat tensor of T real tokens."""
        e = self.embed(tokens)
        if not self.frozen:
            return torch.relu(self.project(e.view(len(tokens), self.n, self.embed_dim)))
        # one lookup serves every member: one matrix product with every member's weights side by side
        weight = self.project.weight.permute(1, 0, 2).reshape(self.embed_dim, -1)
        return torch.relu((e @ weight).view(len(tokens), self.n, -1) + self.project.bias)

    def _normed(self, norm, h):
        return norm(h.reshape(h.shape[0], -1)).view_as(h)

    def encode(self, batch):
        premise = self._normed(self.norm_premise, self._projected(batch["premise_tokens"], batch["premise_length"]))
        hypothesis = self._normed(self.norm_hypothesis,
                                  self._projected(batch["hypothesis_tokens"], batch["hypothesis_length"]))
        return torch.cat([premise, hypothesis], dim=2)

    def head(self, x, batch):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x

    def unfuse(self) -> list:
        if not self.frozen:
            with torch.no_grad():
                for k, m in enumerate(self.members):
                    m.embed.weight.copy_(self.embed.weight[:, k * self.embed_dim:(k + 1) * self.embed_dim])
        self.project.copy_to([m.project[0] for m in self.members])
        _norm_to(self.norm_premise, [m.norm_premise for m in self.members])
        _norm_to(self.norm_hypothesis, [m.norm_hypothesis for m in self.members])
        linears = [[layer for layer in m.classifier if isinstance(layer, nn.Linear)] for m in self.members]
        for i, layer in enumerate(self.layers):
            layer.copy_to([ls[i] for ls in linears])
        return self.members




NliBagOfWords.fused = FusedNliBagOfWords
