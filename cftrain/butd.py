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

from cftrain.models import PairModel, register


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the kept entries only: masked ones get exactly zero weight (and no gradient);
    a row that keeps nothing gets all zeros instead of NaN."""
    keeps_any = mask.any(dim=1, keepdim=True)
    scores = scores.masked_fill(~mask, float("-inf")).masked_fill(~keeps_any, 0.0)
    return torch.softmax(scores, dim=1) * keeps_any


@register("butd")
class BottomUpTopDown(PairModel):
    input_kinds = ("regions",)

    def __init__(self, vocab_size: int, n_outputs: int, feature_dim: int, hidden=(1024,),
                 vectors: torch.Tensor | None = None, embed_dim: int = 300, dropout: float = 0.2, **_):
        super().__init__()
        width = int(hidden[0]) if hidden else 1024
        if vectors is None:
            self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        else:
            self.embed = nn.Embedding.from_pretrained(vectors, freeze=True, padding_idx=0)
        self.gru = nn.GRU(self.embed.embedding_dim, width, batch_first=True)
        self.att_v, self.att_q = nn.Linear(feature_dim, width), nn.Linear(width, width)
        self.att_out = nn.Linear(width, 1)
        self.q_net, self.v_net = nn.Linear(width, width), nn.Linear(feature_dim, width)
        self.classifier = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(2 * width, n_outputs))
        self.dropout = nn.Dropout(dropout)
        # cuDNN's RNN cannot be differentiated twice; GS training turns this on (see `question`)
        self.plain_rnn = False

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

    def attention(self, features: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        joint = torch.relu(self.att_v(features)) * torch.relu(self.att_q(q))[:, None, :]
        return masked_softmax(self.att_out(self.dropout(joint)).squeeze(-1), mask)

    def encode(self, batch):
        return batch["features"]

    def head(self, x, batch):
        q = self.question(batch["tokens"], batch["length"])
        weights = self.attention(x, q, batch["region_mask"])
        v = (weights[..., None] * x).sum(dim=1)
        return self.classifier(torch.relu(self.q_net(q)) * torch.relu(self.v_net(v)))
