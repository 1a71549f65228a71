"""A 1-D convolutional text model (Kim, EMNLP 2014): word vectors (learned, or frozen with
--embeddings), one bank of --filters convolutions per window width in --kernel, ReLU, max over each
text's real positions, dropout, linear. x, the space GS works in, is the pooled features (for a text
pair, the premise's u and the hypothesis's v side by side, one shared convolution; the head reads
(u, v, |u - v|, u * v), the usual matching features, since a linear map of (u, v) alone cannot
relate the two: 40% on SNLI val). Trained as an ensemble by the generic form (`cftrain.ensemble`):
this file is the whole model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cftrain.models import PairModel, frozen_or_learned, init_embedding, register
from cftrain.options import EMBED_DIM, EMBED_INIT, EMBED_SCALE, EMBEDDINGS, Option

KERNEL = Option("kernel", "widths", [3, 4, 5], "Window widths of the 1-D CNN's convolutions, one bank each (Kim "
                "2014: 3,4,5).")
FILTERS = Option("filters", int, 100, "Convolutions per window width of the 1-D CNN (Kim 2014: 100).", low=1,
                 high=4096, sweep={"int": [50, 200]})
DROPOUT = Option("dropout", float, 0.5, "Dropout on the 1-D CNN's pooled features (Kim 2014: 0.5).", low=0, high=1,
                 high_open=True)
SIDES = {"text": ("",), "text_pair": ("premise_", "hypothesis_")}


@register("cnn")
class TextCNN(PairModel):
    """Kim (2014): convolutions over word vectors, max over time, dropout, linear."""
    input_kinds = ("text", "text_pair")
    options = (KERNEL, FILTERS, DROPOUT, EMBEDDINGS, EMBED_DIM, EMBED_INIT, EMBED_SCALE)

    def __init__(self, vocab_size: int, n_outputs: int = 1, input_kind: str = "text",
                 kernel=tuple(KERNEL.default), filters: int = FILTERS.default, dropout: float = DROPOUT.default,
                 vectors: torch.Tensor | None = None, embeddings: str | None = EMBEDDINGS.default,
                 embed_dim: int = EMBED_DIM.default, embed_init: str = EMBED_INIT.default,
                 embed_scale: float | None = EMBED_SCALE.default):
        super().__init__()
        self.sides = SIDES[input_kind]
        self.embed = frozen_or_learned(vocab_size, embed_dim, vectors, embeddings)
        width = self.embed.embedding_dim
        self.convs = nn.ModuleList(nn.Conv1d(width, filters, int(k)) for k in kernel)
        self.drop = nn.Dropout(dropout)
        features = len(self.convs) * filters
        self.out = nn.Linear((4 if len(self.sides) == 2 else 1) * features, n_outputs)
        init_embedding(self.embed, embed_init, embed_scale)

    def _pooled(self, tokens: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """(B, banks x filters): each bank's ReLU outputs, maxed over the windows inside the text."""
        widest = max(conv.kernel_size[0] for conv in self.convs)
        tokens = tokens[:, :max(int(length.max()), widest)]  # the batch's own longest text, not the store's
        if tokens.shape[1] < widest:
            tokens = F.pad(tokens, (0, widest - tokens.shape[1]))
        h = self.embed(tokens).transpose(1, 2)  # (B, D, L); padding embeds to zeros
        pooled = []
        for conv in self.convs:
            c = torch.relu(conv(h))  # (B, F, L - k + 1)
            windows = (length - conv.kernel_size[0] + 1).clamp(min=1)  # windows that start inside the text
            inside = torch.arange(c.shape[2], device=c.device)[None, :] < windows[:, None]
            pooled.append(c.masked_fill(~inside[:, None, :], 0.0).amax(dim=2))  # ReLU >= 0: 0 never wins wrongly
        return torch.cat(pooled, dim=1)

    def encode(self, batch):
        return torch.cat([self._pooled(batch[f"{side}tokens"], batch[f"{side}length"]) for side in self.sides], dim=1)

    def head(self, x, batch):
        if len(self.sides) == 2:  # per row: no batch statistics, so each row's input gradient is its own
            u, v = x.chunk(2, dim=-1)
            x = torch.cat([u, v, (u - v).abs(), u * v], dim=-1)
        return self.out(self.drop(x))
