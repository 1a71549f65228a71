"""Optimizers. AdaDelta (the paper's) with sparse gradients whose cost is proportional to the
rows a step touches, while giving dense AdaDelta's result.

Why it is exact: a row a step does not touch has g = 0, so dense AdaDelta leaves the row's
parameters as they are (its update sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g is 0) and only
decays both accumulators by rho. Each row remembers the step it was last touched; when it is
touched again after k untouched steps, both accumulators are first multiplied by rho^k, then the
usual update runs on that row. (Floating point: rho^k once instead of k multiplications by rho,
equal within float tolerance; a test checks it against torch.optim.Adadelta over many steps.)

Adam and Adamax stay dense: an untouched row still moves under them (their first moment decays
but is not zero), so skipping rows would change the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cfpairs.errors import UserError
from cftrain.options import Option


class LazyAdadelta(torch.optim.Optimizer):
    """torch.optim.Adadelta (no weight decay) that also takes sparse gradients, lazily."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    # both accumulators in one tensor (a sparse step reads and writes their rows once)
                    state["accumulators"] = torch.zeros((2, *param.shape), dtype=param.dtype, device=param.device)
                    state["square_avg"], state["acc_delta"] = state["accumulators"].unbind(0)
                state["step"] += 1
                if param.grad.is_sparse:
                    self._sparse_update(param, state, lr, rho, eps)
                else:
                    self._dense_update(param, param.grad, state["square_avg"], state["acc_delta"], lr, rho, eps)
        return loss

    @staticmethod
    def _dense_update(param, grad, square_avg, acc_delta, lr, rho, eps):
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        std = square_avg.add(eps).sqrt_()
        delta = acc_delta.add(eps).sqrt_().div_(std).mul_(grad)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.add_(delta, alpha=-lr)

    def _sparse_update(self, param, state, lr, rho, eps):
        grad = _coalesced(param.grad)
        rows, values = grad.indices()[0], grad.values()
        if "last_step" not in state:
            state["last_step"] = torch.zeros(param.shape[0], dtype=torch.long, device=param.device)
        step, last = state["step"], state["last_step"]
        # untouched steps since each row's last touch: both accumulators decay by rho^k at once,
        # folded into this step's own rho (rho^(k+1)); rows are unique after coalesce, so they are
        # read with index_select and written with index_copy_ / index_add_ (no advanced indexing)
        idle = (step - 1 - last.index_select(0, rows)).to(values.dtype)
        decay = torch.pow(torch.full_like(idle, rho), idle)[:, None]
        both = state["accumulators"].index_select(1, rows)  # (2, rows, ...): E[g^2] and E[dx^2]
        square_avg, acc_delta = both.unbind(0)
        square_avg.mul_(decay * rho).addcmul_(values, values, value=1 - rho)
        acc_delta.mul_(decay)
        delta = acc_delta.add(eps).sqrt_().div_(square_avg.add(eps).sqrt_()).mul_(values)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.index_add_(0, rows, delta, alpha=-lr)
        state["accumulators"].index_copy_(1, rows, both)
        last.index_fill_(0, rows, step)

    def settle(self) -> None:
        """Bring every row's accumulators up to the current step (for inspection or checkpoints)."""
        for group in self.param_groups:
            for param in group["params"]:
                state = self.state.get(param, {})
                if "last_step" in state:
                    k = (state["step"] - state["last_step"]).to(param.dtype)[:, None]
                    decay = torch.pow(torch.full_like(k, group["rho"]), k)
                    state["square_avg"].mul_(decay)
                    state["acc_delta"].mul_(decay)
                    state["last_step"].fill_(state["step"])


def _coalesced(grad: torch.Tensor) -> torch.Tensor:
    """`grad.coalesce()`, without its sort when the rows are already strictly increasing: autograd
    drops the flag when it stores a gradient, even one built coalesced (the bags' `RowGather`)."""
    if grad.is_coalesced() or grad.sparse_dim() != 1:
        return grad.coalesce()
    rows = grad._indices()[0]
    if not bool((rows[1:] > rows[:-1]).all()):
        return grad.coalesce()
    return torch.sparse_coo_tensor(grad._indices(), grad._values(), grad.shape, is_coalesced=True,
                                   check_invariants=False)


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer: its class, the run options it reads (passed to it by name) and whether a sparse
    gradient gives it the dense result (an untouched row stays where it is)."""
    cls: type
    options: tuple = ()
    sparse_ok: bool = False

    def build(self, config, params):
        """This optimizer over `params` (those that require a gradient), with its own options."""
        own = {option.name: getattr(config, option.name) for option in self.options}
        return self.cls([p for p in params if p.requires_grad], lr=config.lr, **own)


RHO = Option("rho", float, 0.9, "AdaDelta's decay rate (torch's default; Keras: 0.95).", low=0, high=1, low_open=True,
             high_open=True)
EPS = Option("eps", float, 1e-6, "AdaDelta's epsilon (torch's default; Keras: 1e-7).", low=0, high=1, low_open=True)
OPTIMIZERS = {"adadelta": OptimizerSpec(LazyAdadelta, (RHO, EPS), sparse_ok=True),
              "adam": OptimizerSpec(torch.optim.Adam), "adamax": OptimizerSpec(torch.optim.Adamax)}


def optimizer_spec(name: str) -> OptimizerSpec:
    if name not in OPTIMIZERS:
        raise UserError(f"--optimizer {name}: unknown optimizer (choose from {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name]


def make_optimizer(config, params):
    """The run's optimizer over `params` (those that require a gradient), with its own options."""
    return optimizer_spec(config.optimizer).build(config, params)
