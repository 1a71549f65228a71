"""A run trained before a model's hyperparameter became an option (its config.json and model.pt
without it) loads with the value it was trained with: the option's declared default, which is the
constant the model used before."""

from __future__ import annotations

import json

import pytest
import torch

from cftrain.rundir import RunDir
from tests.helpers import ok

ADDED = {"bow": ["embed_dim"], "butd": ["butd_embed_dim", "butd_dropout"]}  # options added to existing models
STORE_OF = {"bow": "text", "butd": "regions"}


def forget_options(run_dir, names: list) -> None:
    """Make `run_dir` look as a run written before `names` were options."""
    config = json.loads((run_dir / "config.json").read_text())
    for name in names:
        config.pop(name)
    (run_dir / "config.json").write_text(json.dumps(config))
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    for name in names:
        saved["kwargs"].pop(name)
    torch.save(saved, run_dir / "model.pt")


@pytest.mark.parametrize("model", sorted(ADDED))
def test_a_run_from_before_an_option_loads_with_its_value(stores, tmp_path, model):
    store = stores[STORE_OF[model]]
    args = ["--mode", "augmented", "--model", model, "--epochs", "1"] + (["--hidden", "4"] if model == "butd" else [])
    ok("cftrain", ["run", store, "--out", tmp_path / "run", *args])
    run_dir = tmp_path / "run"
    trained = [m.state_dict() for m in RunDir(run_dir).load_members()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    forget_options(run_dir, ADDED[model])
    loaded = RunDir(run_dir).load_members()  # shapes from the constructor's defaults: the declarations'
    for state, member in zip(trained, loaded):
        assert all(torch.equal(state[k], v) for k, v in member.state_dict().items())
    again = json.loads(ok("cftrain", ["eval", run_dir, store]).stdout)
    assert again["splits"] == metrics["splits"]
    assert RunDir(run_dir).read_config().get(ADDED[model][0]) is None  # not written back
