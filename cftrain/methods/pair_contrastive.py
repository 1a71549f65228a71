"""A pair-contrastive method in the spirit of PairCFR (Qiu et al., ACL 2024): the task loss plus a
supervised contrastive term over each batch's representations x (the model's encoding), where
rows with the same label are positives and every other row a negative. Batches carry whole pair
groups, so each original meets its own counterfactual as a hard negative: the edit must move the
representation, not only the classifier. Unlike GS it uses no gradient: pairs act through the
representation's geometry.

    L = task + w * mean over anchors i of  -1/|P(i)| sum_{p in P(i)} log( exp(s_ip / T) / sum_{a != i} exp(s_ia / T) )

with s the cosine similarity of the rows' x, P(i) the other rows whose targets equal i's, w
`--contrastive-weight` and T `--temperature`. Each member of an ensemble has its own term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cfpairs.errors import UserError
from cftrain.methods import Method, register
from cftrain.options import Option
from cftrain.runtime import Term, owned

CONTRASTIVE_WEIGHT = Option("contrastive_weight", float, 3.0, "Weight of the pair-contrastive term.", low=0,
                            high=1e3, sweep={"log_uniform": [0.05, 5.0]})
TEMPERATURE = Option("temperature", float, 0.15, "Temperature of the pair-contrastive term's softmax.", low=1e-3,
                     high=10, sweep={"log_uniform": [0.05, 1.0]})


def supervised_contrastive(x: torch.Tensor, targets: torch.Tensor, temperature: float, rows=None) -> tuple:
    """(sums, counts): per member, the sum of the anchors' terms and the number of anchors; x (B, N, D),
    targets (B, C); anchors without a positive in the batch are left out, and with `rows` (B,) bool,
    anchors outside those rows (every row is still a positive or a negative)."""
    z = F.normalize(x.flatten(2), dim=2).transpose(0, 1)  # (N, B, D)
    n = z.shape[1]
    own = torch.eye(n, dtype=torch.bool, device=x.device)
    similarity = (z @ z.transpose(1, 2) / temperature).masked_fill(own, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=2, keepdim=True)
    positive = (targets[:, None, :] == targets[None, :, :]).all(2) & ~own
    count = positive.sum(1)
    per_anchor = -log_prob.masked_fill(~positive, 0.0).sum(2) / count.clamp(min=1)
    anchors = count > 0
    if rows is not None:
        anchors = anchors & rows.to(anchors.device)
    sums = per_anchor.masked_fill(~anchors[None, :], 0.0).sum(1)
    return sums, anchors.sum().expand(z.shape[0]).to(sums.dtype)


@register
class PairContrastive(Method):
    """Augmentation plus a supervised contrastive term over each batch's encodings (PairCFR, Qiu et al. 2024)."""
    name, row_name = "pair-contrastive", "With edited data + pair-contrastive term (PairCFR-style)"
    regions_row_name = "+ CF data + pair-contrastive term"
    options = (CONTRASTIVE_WEIGHT, TEMPERATURE)
    terms = ("contrastive",)
    cost, order = 1.1, 6
    needs_pairs = True
    couples_rows = True  # every row of the batch is a negative of every anchor

    @classmethod
    def check(cls, config, model_class):
        if not model_class.learned_encoding:
            raise UserError(f"--mode {cls.name}: model {config.model} encodes its input data as it is, so a term on "
                            "the encoding cannot train anything; use a model with a learned encoding (bow, nli-bow)")

    def extra_terms(self, x, logits, batch, space, at):
        sums, counts = supervised_contrastive(x, batch["targets"], self.config.temperature, owned(batch))
        return [Term("contrastive", sums, counts, self.config.contrastive_weight)]
