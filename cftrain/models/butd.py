"""Bottom-up top-down VQA model (Anderson et al. 2018; Teney et al.'s "tips and tricks" style).

    q = GRU(word embeddings)                       final state at each question's length
    a = softmax over the kept regions of w . (ReLU(W_v V_r) * ReLU(W_q q))
    v = sum_r a_r V_r
    logits = classifier(ReLU(U_q q) * ReLU(U_v v))

GS space: the region features V (B, R, D) themselves, masked regions already zeroed by the
data loader, so a masked counterfactual's `x_j - x_i` is minus the masked rows.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from cftrain.gs_space import DataSpace, first_layer, rows_of
from cftrain.models import PairModel, frozen_or_learned, init_embedding, register
from cftrain.options import EMBED_INIT, EMBED_SCALE, EMBEDDINGS, HIDDEN, Option

WIDTH = 1024  # BUTD's usual width (Anderson et al. 2018), when --hidden gives none
EMBED_DIM = Option("butd_embed_dim", int, 300, "Width of butd's learned question word embeddings (frozen "
                   "--embeddings bring their own).", low=1, high=4096)
DROPOUT = Option("butd_dropout", float, 0.2, "Dropout in butd's attention and classifier (Teney et al. 2018's "
                 "tips: 0.2).", low=0, high=1, high_open=True)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the kept entries only: masked ones get exactly zero weight (and no gradient);
    a row that keeps nothing gets all zeros instead of NaN."""
    keeps_any = mask.any(dim=1, keepdim=True)
    scores = scores.masked_fill(~mask, float("-inf")).masked_fill(~keeps_any, 0.0)
    return torch.softmax(scores, dim=1) * keeps_any


@register("butd")
class BottomUpTopDown(PairModel):
    input_kinds = ("regions",)
    options = (HIDDEN, DROPOUT, EMBEDDINGS, EMBED_DIM, EMBED_INIT, EMBED_SCALE)
    vmappable = False  # a GRU: its members train one after another
    learned_encoding = False  # x: the region features themselves

    def __init__(self, vocab_size: int, n_outputs: int, feature_dim: int, hidden=(WIDTH,),
                 vectors: torch.Tensor | None = None, butd_embed_dim: int = EMBED_DIM.default,
                 butd_dropout: float = DROPOUT.default, embeddings: str | None = EMBEDDINGS.default,
                 embed_init: str = EMBED_INIT.default, embed_scale: float | None = EMBED_SCALE.default):
        super().__init__()
        width, dropout = int(hidden[0]) if hidden else WIDTH, butd_dropout
        self.embed = frozen_or_learned(vocab_size, butd_embed_dim, vectors, embeddings)
        self.gru = nn.GRU(self.embed.embedding_dim, width, batch_first=True)
        self.att_v, self.att_q = nn.Linear(feature_dim, width), nn.Linear(width, width)
        self.att_out = nn.Linear(width, 1)
        self.q_net, self.v_net = nn.Linear(width, width), nn.Linear(feature_dim, width)
        self.classifier = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(2 * width, n_outputs))
        self.dropout = nn.Dropout(dropout)
        # cuDNN's RNN cannot be differentiated twice; GS training turns this on (see `question`)
        self.plain_rnn = False
        init_embedding(self.embed, embed_init, embed_scale)

    def set_double_backward(self, enabled: bool) -> None:
        self.plain_rnn = enabled

    def question(self, tokens: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """GRU state after each question's last real token."""
        off_cudnn = torch.backends.cudnn.flags(enabled=False) if self.plain_rnn and tokens.is_cuda \
            else contextlib.nullcontext()
        with off_cudnn:
            states, _ = self.gru(self.embed(tokens))
        last = (length.clamp(min=1) - 1).long()
        return states[torch.arange(len(tokens), device=tokens.device), last]

    def attention(self, projected: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Weights (B, R) over the regions from their projections att_v(V) (B, R, H)."""
        joint = torch.relu(projected) * torch.relu(self.att_q(q))[:, None, :]
        return masked_softmax(self.att_out(self.dropout(joint)).squeeze(-1), mask)

    def encode(self, batch):
        return batch["features"]

    def head(self, x, batch):
        return self._answer(x, self.att_v(x), batch)[0]

    def _answer(self, x, projected, batch) -> tuple:
        """(logits, attention weights, pooled v) from the features and their projections."""
        q = self.question(batch["tokens"], batch["length"])
        weights = self.attention(projected, q, batch["region_mask"])
        v = torch.bmm(weights[:, None, :], x).squeeze(1)
        return self.classifier(torch.relu(self.q_net(q)) * torch.relu(self.v_net(v))), weights, v

    def data_head(self, raw, batch):
        """The features reach the logits only through y = att_v(V) and v = sum_r a_r V_r."""
        projected, gram = first_layer(raw, self.att_v)
        logits, weights, v = self._answer(raw, projected, batch)
        return logits, RegionSpace(raw, projected, v, weights, gram, self.att_v.weight)


class RegionSpace(DataSpace):
    """GS on region features V through y_r = W V_r + b and v = sum_r a_r V_r: with d_r = ds/dy_r
    and u = ds/dv, g_r = W^T d_r + a_r u, so

        g . t = sum_r d_r . (y_j,r - y_i,r) + u . sum_r a_r t_r
        |g|^2 = sum_r d_r^T (W W^T) d_r + 2 a_r d_r . (W u) + a_r^2 |u|^2

    never forming g (B, R, D), whose second differentiation cost three (B R x H x D) products."""

    def __init__(self, raw, projected, pooled, weights, gram, weight):
        super().__init__(raw)
        self.outputs = (projected, pooled)
        self.weights, self.gram, self.weight = weights, gram, weight

    def products(self, grads, edges):
        (y, v), (d, u), a = self.outputs, grads, self.weights
        rows, partners = edges[:, 0], edges[:, 1]
        a_i = rows_of(a, rows)
        pooled_t = torch.bmm(a_i[:, None, :], self.raw.index_select(0, partners)).squeeze(1) - rows_of(v, rows)
        dot = (rows_of(d, rows) * (y.index_select(0, partners) - rows_of(y, rows))).sum((1, 2)) + \
            (rows_of(u, rows) * pooled_t).sum(1)
        quadratic = ((d.flatten(0, 1) @ self.gram[0]).view_as(d) * d).sum((1, 2))
        cross = (a * torch.bmm(d, (u @ self.weight.T)[:, :, None]).squeeze(2)).sum(1)  # sum_r a_r d_r . W u
        g_sq = quadratic + 2 * cross + (u * u).sum(1) * (a * a).sum(1)
        return dot[:, None], rows_of(g_sq, rows)[:, None]
