"""Models as `encode(batch) -> x` (the GS space) and `head(x, batch) -> logits`, behind a registry."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from cfpairs.errors import UserError
from cftrain.gs_space import FirstLayerSpace, first_layer

MODELS: dict[str, type] = {}


def register(name: str):
    def wrap(cls):
        MODELS[name] = cls
        return cls
    return wrap


def make_model(name: str, **kwargs) -> nn.Module:
    check_model(name)
    return MODELS[name](**kwargs)


def check_model(name: str, input_kind: str | None = None) -> None:
    """An unknown model, or one that does not read this input kind, is a one-line error."""
    if name not in MODELS:
        raise UserError(f"--model {name}: unknown model (choose from {', '.join(sorted(MODELS))})")
    if input_kind is not None and input_kind not in MODELS[name].input_kinds:
        fitting = sorted(m for m, cls in MODELS.items() if input_kind in cls.input_kinds)
        raise UserError(f"--model {name}: does not fit the store's input kind {input_kind!r} "
                        f"(models for {input_kind}: {', '.join(fitting)})")


class PairModel(nn.Module):
    """A model as `encode(batch) -> x` (the GS space) and `head(x, batch) -> logits`."""
    input_kinds: tuple = ()  # the store input kinds whose batches it reads

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encode(batch), batch)

    def set_double_backward(self, enabled: bool) -> None:
        """Told whether training will differentiate the input gradient again (GS); models whose
        layers cannot (cuDNN's RNN) switch to an implementation that can."""

    def data_head(self, raw: torch.Tensor, batch: dict) -> tuple | None:
        """(logits, space) when x = encode(batch) is data that head reads only through maps linear
        in it: `space` (a `cftrain.gs_space.DataSpace`) lets GS work in their output space, exactly
        and without differentiating back to the inputs. None: GS differentiates back to x."""
        return None

    def frozen_vectors(self) -> torch.Tensor | None:
        """Pretrained word vectors kept frozen (saved with the run, checked by sha256), if any."""
        embed = getattr(self, "embed", None)
        if isinstance(embed, nn.Embedding) and not embed.weight.requires_grad:
            return embed.weight
        return None


class RowGather(torch.autograd.Function):
    """weight.index_select(0, rows) for sorted unique `rows`, whose gradient is a sparse tensor
    already coalesced (one row each): the optimizer does not sort a row per token occurrence."""

    @staticmethod
    def forward(ctx, weight, rows):
        ctx.save_for_backward(rows)
        ctx.shape = weight.shape
        return weight.index_select(0, rows)

    @staticmethod
    def backward(ctx, grad):
        rows, = ctx.saved_tensors
        return torch.sparse_coo_tensor(rows[None], grad, ctx.shape, is_coalesced=True, check_invariants=False), None


def mean_embedding(embed, tokens: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Average over each row's real tokens (padding excluded) of `embed(token)`, an `nn.Embedding`
    or any function of a 1-d token tensor. Only real tokens are looked up: an `nn.Embedding` as one
    bag per row (`embedding_bag`), a function once over the flattened tokens, then summed per row;
    no (B, L, ...) tensor of padded positions, forward or backward."""
    real = torch.arange(tokens.shape[1], device=tokens.device)[None, :] < length[:, None]
    if isinstance(embed, nn.Embedding):
        offsets = (torch.cumsum(length, 0) - length).long()
        if not embed.sparse:
            return F.embedding_bag(tokens[real], embed.weight, offsets, mode="mean")
        rows, inverse = torch.unique(tokens[real], return_inverse=True)
        return F.embedding_bag(inverse, RowGather.apply(embed.weight, rows), offsets, mode="mean")
    values = embed(tokens[real])
    rows = torch.repeat_interleave(torch.arange(len(tokens), device=tokens.device), length.long())
    summed = values.new_zeros((len(tokens), *values.shape[1:])).index_add_(0, rows, values)
    return summed / length.clamp(min=1).to(values.dtype).view(-1, *[1] * (values.dim() - 1))


@register("bow")
class BagOfWords(PairModel):
    """IMDb: learned 50-d embeddings averaged over the real tokens, linear to one logit."""
    input_kinds = ("text",)

    def __init__(self, vocab_size: int, n_outputs: int = 1, dim: int = 50, sparse: bool = False, **_):
        super().__init__()
        # sparse: a step's gradient covers only the rows its batch uses (cftrain.optim.LazyAdadelta)
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0, sparse=sparse)
        self.out = nn.Linear(dim, n_outputs)

    def encode(self, batch):
        return mean_embedding(self.embed, batch["tokens"], batch["length"])

    def head(self, x, batch):
        return self.out(x)


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

    def __init__(self, vocab_size: int, n_outputs: int = 3, vectors: torch.Tensor | None = None,
                 width: int = 100, dim: int = 50, sparse: bool = False, **_):
        super().__init__()
        if vectors is None:
            warnings.warn("nli-bow without --embeddings: learning 300-d word embeddings from scratch")
            self.embed = nn.Embedding(vocab_size, 300, padding_idx=0, sparse=sparse)
        else:
            self.embed = nn.Embedding.from_pretrained(vectors, freeze=True, padding_idx=0)
        self.project = nn.Sequential(nn.Linear(self.embed.embedding_dim, dim), nn.ReLU())
        self.norm_premise, self.norm_hypothesis = nn.BatchNorm1d(dim), nn.BatchNorm1d(dim)
        layers, size = [], 2 * dim
        for _ in range(3):
            layers += [nn.Linear(size, width), nn.ReLU()]
            size = width
        self.classifier = nn.Sequential(*layers, nn.Linear(size, n_outputs))

    def encode(self, batch):
        projected = lambda tokens, length: mean_embedding(lambda t: self.project(self.embed(t)), tokens, length)
        premise = self.norm_premise(projected(batch["premise_tokens"], batch["premise_length"]))
        hypothesis = self.norm_hypothesis(projected(batch["hypothesis_tokens"], batch["hypothesis_length"]))
        return torch.cat([premise, hypothesis], dim=1)

    def head(self, x, batch):
        return self.classifier(x)


@register("mlp")
class MLP(PairModel):
    """Vector stores (toy, COCO): ReLU layers of `hidden` widths, linear output. GS space: the input."""
    input_kinds = ("vector",)

    def __init__(self, input_dim: int, n_outputs: int = 1, hidden: tuple = (), **_):
        super().__init__()
        layers, width = [], input_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, n_outputs))

    def encode(self, batch):
        return batch["x"]

    def head(self, x, batch):
        return self.net(x)

    def data_head(self, raw, batch):
        y, gram = first_layer(raw, self.net[0])
        return self.net[1:](y), FirstLayerSpace(raw, y, gram)


from cftrain import butd  # noqa: E402,F401  (registers "butd"; imports this module's registry)
