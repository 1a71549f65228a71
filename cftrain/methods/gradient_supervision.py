"""Gradient supervision (Teney et al., ECCV 2020) and its random-relations ablation: the task loss
plus `--gs-weight` x the GS term over each batch's pairs (`cftrain.gs`)."""

from __future__ import annotations

from cftrain.gs import RANDOM_SIGNS, gs_loss
from cftrain.methods import Method, register
from cftrain.options import Option

GS_WEIGHT = Option("gs_weight", float, 1.0, "Weight (lambda) of the GS term.", low=0, high=1e6,
                   sweep={"log_scale": [0.1, 10.0]})
GS_DETACH_TARGET = Option("gs_detach_target", bool, False, "Treat t = x_j - x_i as a constant (default: "
                          "gradients also flow through it into a learned encoder, the paper's form).")
RANDOM_SIGN = Option("random_sign", str, "partner", "Class and sign of each random relation: from the random "
                     "partner's label (partner; same-label partners skipped), from the row's own pair (pair), or "
                     "the pair's class with no sign (none).", choices=RANDOM_SIGNS)


@register
class GradientSupervision(Method):
    """The task loss plus `gs_weight` x the GS term over each batch's pairs."""
    name, row_name = "gs", "With edited data + GS"
    regions_row_name = "+ CF data + GS"
    options = (GS_WEIGHT, GS_DETACH_TARGET)
    random_relations = False
    cost, order = 1.5, 4  # the GS term's double backward

    def needs_input_gradient(self, config):
        return config.gs_weight > 0

    def loss(self, x, logits, batch, ctx, space=None):
        config = ctx.config
        if config.gs_weight <= 0:
            return None, {}
        term, stats = gs_loss(x, logits, batch["targets"], batch["edges"], ctx.labels, random=self.random_relations,
                              generator=ctx.generator, members=True,
                              reduce_counts=ctx.distributed.sum_ if ctx.distributed else None,
                              constant_direction=x.grad_fn is None or config.gs_detach_target,
                              random_sign=config.get("random_sign", "partner"),  # grad_fn None: x is data
                              space=space)
        return config.gs_weight * term, {"gs": float(term.detach()) / ctx.members, "gs_rows": stats["rows"]}


@register
class GradientSupervisionRandom(GradientSupervision):
    """The paper's ablation: each row related to a random other row of its batch."""
    name, row_name = "gs-random", "With edited data + GS, random relations"
    regions_row_name = "+ CF data + GS, random relations"
    options = (GS_WEIGHT, GS_DETACH_TARGET, RANDOM_SIGN)
    random_relations = True
    order = 5
