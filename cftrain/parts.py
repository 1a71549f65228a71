"""A run's parts, resolved once from its config and store: the method class, the model class, the
labels (loss, metric, targets) and the model's constructor arguments. The run builds them before
any work (`RunParts.of`, which also refuses a config that does not fit the store) and every stage
after that takes these objects, never a name to look up again."""

from __future__ import annotations

from dataclasses import dataclass

from cftrain.labels import Labels, labels_with
from cftrain.presets import RunConfig, validate


@dataclass(frozen=True)
class RunParts:
    config: RunConfig
    method: type           # the mode's `cftrain.methods.Method` class
    model: type            # the model's class (`cftrain.models`)
    optimizer: object      # the optimizer's `cftrain.optim.OptimizerSpec` (`build(config, params)`)
    labels: Labels         # the loss the store's label kind trains with, its metric and targets
    model_kwargs: dict     # the model's constructor arguments: the store's shapes and its options (model.pt)

    @classmethod
    def of(cls, config: RunConfig, store) -> RunParts:
        """The parts of `config` on an open store; a UserError when the config does not fit it."""
        found = validate(config, store.input_kind)  # each name looked up once, here
        labels = labels_with(store.label_kind, found["loss"], config)
        found["mode"].check_labels(config, labels)
        return cls(config, found["mode"], found["model"], found["optimizer"], labels,
                   model_kwargs(config, found["model"], store))

    def make_optimizer(self, params):
        return self.optimizer.build(self.config, params)


def model_kwargs(config: RunConfig, model: type, store) -> dict:
    """Constructor arguments of the run's models, from the store's shapes and the model's own options."""
    kwargs = {"vocab_size": len(store.vocab or []), "input_kind": store.input_kind,
              "n_outputs": 1 if store.label_kind == "binary" else len(store.class_names)}
    columns = store[store.splits[0]].examples
    if "x" in columns:
        kwargs["input_dim"] = int(columns.shape("x")[1])
    regions = store.regions_info()
    if regions is not None:
        kwargs["feature_dim"] = int(regions.features_shape[2])
    kwargs.update({o.name: config.get(o.name) for o in model.options})
    return kwargs
