"""Models as `encode(batch) -> x` (the GS space) and `head(x, batch) -> logits`, behind a registry.

One model per module of this package (bow, cnn, fasttext, nb_ngrams, nli_bow, mlp, butd; `ngrams`
holds the n-gram hashing two of them share), each with the options it reads
and, where bench/ensemble.py shows it pays, its hand-fused ensemble form; every module here is
imported with the package, so a new model is one new file (`docs/EXTENDING.md`)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import torch
import torch.nn.functional as F
from torch import nn

from cfpairs.errors import UserError

MODELS: dict[str, type] = {}


def register(name: str):
    def wrap(cls):
        MODELS[name] = cls
        return cls
    return wrap


def make_model(name: str, **kwargs) -> nn.Module:
    """Model `name` built from `kwargs`: every option it declares (each a keyword of its constructor:
    a registry test checks it), and of the store's shapes (vocab_size, input_dim...) those it takes."""
    check_model(name)
    return build_model(MODELS[name], **kwargs)


def build_model(cls: type, **kwargs) -> nn.Module:
    """A model of class `cls` (a run's resolved model, `cftrain.parts`) from `kwargs`, as `make_model`."""
    accepted = inspect.signature(cls.__init__).parameters
    declared = {o.name for o in cls.options}
    return cls(**{k: v for k, v in kwargs.items() if k in accepted or k in declared})


def model_class(name: str) -> type:
    check_model(name)
    return MODELS[name]


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
    options: tuple = ()      # the run options only models read that this one reads (cftrain.options)
    fused = None             # a hand-fused ensemble class (cftrain.ensemble), where it beats the generic one
    vmappable = True         # False: the generic fused form cannot run it (torch.func.vmap); members in turn
    learned_encoding = True  # False: `encode` returns input data as it is (no parameters before x)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encode(batch), batch)

    def prepare(self, train, shared: dict) -> None:
        """Statistics of the rows the run trains on (`cftrain.data.SplitTensors`) that the model keeps
        in its state, never learned (nb-ngrams' log-count ratios); called once per member before
        training, `shared` a dict every member of the run sees (compute once, copy into each)."""

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


def init_embedding(embed: nn.Embedding, init: str = "normal", scale: float | None = None) -> None:
    """Learned word embeddings drawn as `--embed-init` says (torch's N(0, 1) by default; Keras draws
    U(-0.05, 0.05)); the padding row stays zero. Frozen pretrained vectors are left alone. Models
    call it last in their constructor, so the draw follows every other layer's."""
    if not embed.weight.requires_grad or (init == "normal" and scale is None):
        return  # frozen, or torch's own initialisation as drawn by nn.Embedding
    with torch.no_grad():
        if init == "uniform":
            scale = 0.05 if scale is None else scale
            embed.weight.uniform_(-scale, scale)
        else:
            embed.weight.normal_(0.0, scale)
        if embed.padding_idx is not None:
            embed.weight[embed.padding_idx].zero_()


def frozen_or_learned(vocab_size: int, dim: int, vectors, embeddings, sparse: bool = False) -> nn.Embedding:
    """The word embedding table: `vectors` frozen (the run loads `--embeddings` once for its
    members), or learned of width `dim`."""
    if embeddings is not None and vectors is None:
        raise UserError(f"--embeddings {embeddings}: the vectors were not loaded for the model")
    if vectors is not None:
        return nn.Embedding.from_pretrained(vectors, freeze=True, padding_idx=0)
    return nn.Embedding(vocab_size, dim, padding_idx=0, sparse=sparse)


def mean_embedding(embed, tokens: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Average over each row's real tokens (padding excluded) of `embed(token)`, an `nn.Embedding`
    or any function of a 1-d token tensor. Only real tokens are looked up: an `nn.Embedding` as one
    bag per row (`embedding_bag`), a function once over the flattened tokens, then summed per row;
    no (B, L, ...) tensor of padded positions, forward or backward."""
    if hasattr(embed, "bag_mean"):  # a member's columns of an ensemble's shared table (cftrain.ensemble)
        return embed.bag_mean(tokens, length, mean_embedding)
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


def _discover() -> None:
    """Import every model module of this package (each registers its models)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


_discover()
