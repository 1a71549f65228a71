"""Sharpness-aware minimisation (Foret et al., ICLR 2021) on the augmented data: each step takes
the gradient at the weights moved uphill by `--sam-rho` along the normalised gradient, so training
seeks flat minima. A method that owns its step: two forward and backward passes per batch.

    e_k = rho * g_k / ||g_k||,  then  w_k <- optimizer step with grad L_k(w_k + e_k)

per ensemble member k (its own gradient norm: members are separate models; `Run.member_parts`
says which parameters are whose). Under torchrun both gradients are summed across processes
before use, so every process moves by the same e and takes the step one process would.
"""

from __future__ import annotations

import torch

from cfpairs.errors import UserError
from cftrain.member_parts import member_norms, scale_members
from cftrain.methods import Method, register
from cftrain.options import Option

SAM_RHO = Option("sam_rho", float, 0.05, "SAM's neighbourhood radius rho (the perturbation's length).", low=0,
                 high=10, sweep={"log_uniform": [0.01, 0.5]})


@register
class SharpnessAware(Method):
    """Augmentation trained with SAM: the gradient taken at the worst nearby weights."""
    name, row_name = "sam", "With edited data, sharpness-aware (SAM)"
    regions_row_name = "+ CF data, SAM"
    options = (SAM_RHO,)
    cost, order = 2.0, 8  # two passes per step
    in_tables = False     # not one of the paper's rows: a table shows it when --modes names it

    @classmethod
    def check(cls, config, model_class):
        if config.get("sam_rho", 0.05) <= 0:
            raise UserError(f"--mode {cls.name}: --sam-rho must be above 0 (rho 0 is --mode augmented)")

    def step(self, batch: dict, at) -> dict:
        self.ensemble.train()
        params = [p for p in self.ensemble.parameters() if p.requires_grad]
        losses, stats = self.member_losses(batch, at)
        self.backward(losses)
        parts = self.run.member_parts()
        grads = {p: p.grad for p in params if p.grad is not None}
        norms = member_norms(parts, self.run.members, grads)
        factors = torch.where(norms > 0, self.config.sam_rho / norms.clamp(min=1e-12), torch.zeros_like(norms))
        moves = scale_members(parts, self.run.members, grads, factors)
        with torch.no_grad():
            for p, move in moves.items():
                p.add_(move)
        losses, _ = self.member_losses(batch, at)  # the same rows, at the moved weights
        self.backward(losses)
        with torch.no_grad():
            for p, move in moves.items():
                p.sub_(move)
        self.optimizer.step()
        return stats
