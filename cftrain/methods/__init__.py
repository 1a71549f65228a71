"""Training methods, one class each, behind one registry (DomainBed's idea: an `Algorithm` per run).

A method's class says which rows it trains on (`training_rows`) and declares the options only it
reads (`options`, `cftrain.options.Option`s: default, check, sweep range). The loop builds one
instance per run (`Method(run)`, `cftrain.runtime.Run`), which owns its optimizer(s) and state, and
calls `step(batch, at)` on every batch with the epoch and step. The default step is the task loss
plus the terms of `extra_terms`, each reported as sums and counts (`cftrain.runtime.Term`) that the
run normalises over every process: a GS variant overrides `extra_terms`, a method with its own
optimizer or schedule overrides `__init__` and `step`. The loop, the command line, sweeps and
tables read this registry and never test a method's name. Every module of this package is imported
with it, so a new method is one new file (`docs/EXTENDING.md`); `order` places its row in tables.
"""

from __future__ import annotations

from cfpairs.errors import UserError
from cfpairs.registering import discover, ordered_register
from cftrain import step
from cftrain.step import forward, task_term  # noqa: F401  (re-exported: the step's pieces)

METHODS: dict[str, type] = {}
register = ordered_register(METHODS)  # tables' rows in the methods' `order`


def default_mode() -> str:
    """The mode a run trains when none is given: the method that says it is the default."""
    return next(name for name, cls in METHODS.items() if cls.default)


def curve_modes() -> list:
    """The modes a learning curve draws by default."""
    return [name for name, cls in METHODS.items() if cls.in_curves]


def method(name: str) -> type:
    """The method class registered as `name` (a mode)."""
    if name not in METHODS:
        raise UserError(f"unknown mode {name!r} (choose from {', '.join(METHODS)})")
    return METHODS[name]


class Method:
    """A training method: its class declares what it is (rows, options, checks: read before any
    run), and an instance is built for each run from the run's config and ensemble (`Run`): it
    owns its optimizer(s) and any state it keeps across steps, and `step(batch, at)` is the whole
    training step. The default step adds the method's own terms (`extra_terms`) to the task loss;
    a method with its own step or optimizer overrides `__init__` and `step`."""
    name = ""
    row_name = ""               # the row of the paper's Table 3 (text, COCO)
    regions_row_name = None     # the row of the paper's Table 1 (VQA), when it differs
    trains = True               # False: predictions are drawn, no model is trained
    options: tuple = ()         # the run options only this method reads (cftrain.options.Option)
    terms: tuple = ()           # the names of its own loss terms beside the task loss (history keys)
    cost = 1.0                  # expected training time relative to augmentation's (orders a table's runs)
    order = 50.0                # the row's place in tables (built-in rows: 0-10)
    needs_pairs = False         # True: learns from the pairs (a train split without any is refused)
    default = False             # True: the mode a run trains when none is given (one method says so)
    in_curves = False           # True: a row of a learning curve by default (the paper's Fig. 5)
    in_tables = True            # False: a table's row only when --modes names it (not a row of the paper's tables)
    couples_rows = False        # True: a term relates rows of different pair groups (random partners,
    #                             a contrastive batch): under torchrun every process holds the whole batch

    def __init__(self, run):
        self.run, self.config, self.ensemble = run, run.config, run.ensemble
        self.optimizer = run.optimizer(self.ensemble.parameters())

    @classmethod
    def table_row_name(cls, input_kind: str) -> str:
        return (cls.regions_row_name if input_kind == "regions" else None) or cls.row_name

    @classmethod
    def check(cls, config, model_class) -> None:
        """Refuse, before any work, a config this method cannot train (a UserError naming why)."""

    @classmethod
    def check_labels(cls, config, labels) -> None:
        """Refuse, before any work, a config this method cannot train with the store's labels
        (`cftrain.labels.Labels`: the loss the store's label kind trains with)."""

    @classmethod
    def check_pairs(cls, pairs: int, where: str) -> None:
        """Refuse, before any work, a train split with no pairs when this method learns from pairs."""
        if cls.needs_pairs and not pairs:
            raise UserError(f"--mode {cls.name}: {where} has no pairs, and {cls.name} learns from pairs (it would "
                            "train as plain augmentation); use --mode augmented, or a store with pairs")

    @classmethod
    def training_rows(cls, train, seed: int):
        """The training split this method learns from (default: every row, pairs kept)."""
        return train

    @classmethod
    def needs_input_gradient(cls, config) -> bool:
        """Whether a term differentiates the logits w.r.t. x and then again (double backward: x must
        require grad, and models avoid layers that cannot, e.g. cuDNN's RNN)."""
        return False

    def extra_terms(self, x, logits, batch: dict, space, at) -> list:
        """The method's own `cftrain.runtime.Term`s, named as `terms` declares, summed over the rows
        this process owns (`cftrain.runtime.owned`). x (B, N, ...) and logits (B, N, C) have the
        ensemble's member dimension; `space`: a `cftrain.gs_space.DataSpace` when x is data the
        model reads through linear maps; `at`: the epoch and step."""
        return []

    def member_losses(self, batch: dict, at) -> tuple:
        """((N,) each member's loss, or None where this process holds no row of the batch; the
        history's stats): the task loss plus the method's terms, normalised over every process
        (`cftrain.step`). A method that owns its step calls it as often as it needs (SAM: twice)."""
        return step.member_losses(self, batch, at)

    def backward(self, losses) -> None:
        """Gradients of the members' summed losses, summed across processes (`cftrain.step`)."""
        step.backward(self, losses)

    def step(self, batch: dict, at) -> dict:
        """One optimisation step on one batch of whole pair groups (already on the device); returns
        the history's stats. The common step is written out whole in `cftrain.step.training_step`."""
        return step.training_step(self, batch, at)


discover(__name__, __path__)
TRAINED = tuple(name for name, m in METHODS.items() if m.trains)

__all__ = ["METHODS", "TRAINED", "Method", "curve_modes", "default_mode", "forward", "method", "register",
           "task_term"]
