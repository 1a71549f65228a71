"""Gradient supervision (Teney et al., ECCV 2020) and its random-relations ablation: the task loss
plus `--gs-weight` x the GS term over each batch's pairs (`cftrain.gs`). On a store with keep
pairs (format 3), their edges add GS's counterpart, cos(g, t)^2 (`cftrain.gs.keep_sums`: the
gradient should be orthogonal to an edit that keeps the label), to the same term; random
relations draw partners among every row and leave relations aside."""

from __future__ import annotations

from cfpairs.errors import UserError
from cftrain.gs import RANDOM_SIGNS, gs_sums, keep_sums
from cftrain.methods import Method, register
from cftrain.options import Option
from cftrain.runtime import Term, owned

GS_WEIGHT = Option("gs_weight", float, 1.0, "Weight (lambda) of the GS term.", low=0, high=1e6,
                   sweep={"log_scale": [0.1, 10.0]})
GS_DETACH_TARGET = Option("gs_detach_target", bool, False, "Treat t = x_j - x_i as a constant (default: "
                          "gradients also flow through it into a learned encoder, the paper's form).")
GS_CLASS = Option("gs_class", str, "own", "The class whose logit's gradient each pair supervises: the row's own "
                  "(own; its partner's when the edit left the row's class unchanged) or its partner's (partner: an "
                  "original with edits to two other classes gets one supervised gradient per edit). Stores with one "
                  "class per row among several logits only.", choices=("own", "partner"))
RANDOM_SIGN = Option("random_sign", str, "partner", "Class and sign of each random relation: from the random "
                     "partner's label (partner; same-label partners skipped), from the row's own pair (pair), or "
                     "the pair's class with no sign (none).", choices=RANDOM_SIGNS)


@register
class GradientSupervision(Method):
    """The task loss plus `gs_weight` x the GS term over each batch's pairs."""
    name, row_name = "gs", "With edited data + GS"
    regions_row_name = "+ CF data + GS"
    options = (GS_WEIGHT, GS_DETACH_TARGET, GS_CLASS)
    terms = ("gs",)
    random_relations = False
    needs_pairs = True
    default = in_curves = True  # the product's method
    cost, order = 1.5, 4  # the GS term's double backward

    @classmethod
    def check_labels(cls, config, labels):
        if config.get("gs_class") == "partner" and not labels.one_class_per_row:
            raise UserError(f"--gs-class partner: the {labels.name} loss supervises every class the edit changes "
                            "(one logit, or several labels per row); only one-class-per-row stores choose a class")

    @classmethod
    def needs_input_gradient(cls, config):
        return config.gs_weight > 0

    def extra_terms(self, x, logits, batch, space, at):
        config = self.config
        if config.gs_weight <= 0:
            zero = logits.new_zeros(logits.shape[1])
            return [Term("gs", zero, zero)]
        keep = batch.get("edge_keep")  # a store with keep pairs (format 3): their edges get GS's counterpart
        edges, known = batch["edges"], space.known if space is not None else None
        constant = x.grad_fn is None or config.gs_detach_target  # grad_fn None: x is data
        if keep is not None:
            edges = edges[~keep]
            if space is not None and known is not None:
                space.known = known[~keep]
        sums, counts, _ = gs_sums(x, logits, batch["targets"], edges, self.run.loss,
                                  random=self.random_relations, generator=self.run.generator, members=True,
                                  constant_direction=constant, random_sign=config.get("random_sign", "partner"),
                                  space=space, partner_class=config.get("gs_class") == "partner", rows=owned(batch))
        if keep is not None and keep.any() and not self.random_relations:
            if space is not None:
                space.known = None if known is None else known[keep]
            kept_sums, kept_counts = keep_sums(x, logits, batch["targets"], batch["edges"][keep], members=True,
                                               constant_direction=constant, space=space, rows=owned(batch))
            sums, counts = sums + kept_sums, counts + kept_counts
        return [Term("gs", sums, counts, config.gs_weight)]


@register
class GradientSupervisionRandom(GradientSupervision):
    """The paper's ablation: GS with each row related to a random other row of its batch."""
    name, row_name = "gs-random", "With edited data + GS, random relations"
    regions_row_name = "+ CF data + GS, random relations"
    options = (GS_WEIGHT, GS_DETACH_TARGET, GS_CLASS, RANDOM_SIGN)
    random_relations = True
    default = in_curves = False
    couples_rows = True  # a row's partner may be in any pair group of the batch
    order = 5
