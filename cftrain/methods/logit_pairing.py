"""Counterfactual logit pairing (Garg et al., AIES 2019), for pairs whose edit changes the label.

Garg et al. pair an example with a counterfactual that should get the same prediction and penalise
the difference of their logits. Here the edit changes the label, so the pairing asks the logits to
differ as the labels do: on each class, the gap between a pair's logits should be `--clp-margin`
times the gap between its targets (+-margin on a class the edit turns on or off, 0 on a class it
keeps: Garg's invariance, where it applies):

    L = task + w * mean over the batch's pair edges (i, j) of  mean_c ((z_j - z_i)_c - m (y_j - y_i)_c)^2

with z the logits, y the dense targets, w `--clp-weight` and m `--clp-margin` (m = 0 is Garg's
original term, which would pull a label-flipping pair's predictions together). Like GS it uses the
pairs; unlike GS it constrains outputs, not gradients. Each ensemble member has its own term.
"""

from __future__ import annotations

from cftrain.methods import Method, register
from cftrain.options import Option
from cftrain.runtime import Term, owned

CLP_WEIGHT = Option("clp_weight", float, 1.0, "Weight of the counterfactual logit pairing term.", low=0, high=1e3,
                    sweep={"log_uniform": [0.05, 20.0]})
CLP_MARGIN = Option("clp_margin", float, 2.0, "The logit gap a pair should show on each class its edit changes (the "
                    "labels' sign); classes it keeps should keep their logits.", low=0, high=50,
                    sweep={"uniform": [0.5, 6.0]})


def logit_pairing(logits, targets, edges, margin: float, rows=None) -> tuple:
    """(sums, counts): per member, the sum over edges (i, j) of mean_c ((z_j - z_i) - m (y_j - y_i))^2
    and the number of edges; logits (B, N, C), targets (B, C), edges (E, 2); with `rows` (B,) bool, only
    edges whose row i is one of them."""
    if rows is not None:
        edges = edges[rows.to(edges.device)[edges[:, 0]]]
    gap = logits[edges[:, 1]] - logits[edges[:, 0]] - margin * (targets[edges[:, 1]] - targets[edges[:, 0]])[:, None]
    per_edge = gap.pow(2).mean(2)  # (E, N)
    return per_edge.sum(0), per_edge.new_full((logits.shape[1],), float(len(edges)))


@register
class LogitPairing(Method):
    """Augmentation plus counterfactual logit pairing (Garg et al. 2019): each pair's logits differ as its labels do."""
    name, row_name = "logit-pairing", "With edited data + counterfactual logit pairing"
    regions_row_name = "+ CF data + logit pairing"
    options = (CLP_WEIGHT, CLP_MARGIN)
    terms = ("clp",)
    needs_pairs = True
    cost, order = 1.1, 7

    def extra_terms(self, x, logits, batch, space, at):
        sums, counts = logit_pairing(logits, batch["targets"], batch["edges"], self.config.clp_margin, owned(batch))
        return [Term("clp", sums, counts, self.config.clp_weight)]
