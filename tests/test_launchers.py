"""Launchers (`cftrain/launchers/`), whatever is registered: each runs a two-run toy table whose
table.json equals the local one's (timings aside); every option of a planned run, those without a
campaign flag too, written as a `cftrain run` command and parsed back gives the same config; a
launcher's options are refused with another launcher; a failed command is named with its file."""

from __future__ import annotations

import json

import pytest

from cfpairs.errors import UserError
from cftrain.commands import run_arguments
from cftrain.launchers import LAUNCHERS, make_launcher
from cftrain.methods import METHODS
from cftrain.presets import resolve
from cftrain.registry import all_options, choices, problem
from cftrain.table import run_table

ROWS = ("name", "mode", "best_epoch", "splits", "consistency", "columns", "alignment")


def table_rows(folder) -> list:
    return [{k: row.get(k) for k in ROWS} for row in json.loads((folder / "table.json").read_text())["rows"]]


@pytest.fixture(scope="module")
def local_table(stores, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "table"
    run_table(stores["vector"], out, modes=["chance", "augmented"], epochs=2, jobs=1)
    return out


def launcher_params():
    """Each launcher; those that start processes (--jobs 2 here) are end-to-end tests (marker e2e)."""
    return [pytest.param(name, marks=[pytest.mark.e2e] if cls.reads_jobs else []) for name, cls in LAUNCHERS.items()]


@pytest.mark.parametrize("name", launcher_params())
def test_every_launcher_gives_the_local_table(name, stores, local_table, tmp_path):
    cls = LAUNCHERS[name]
    if cls.needs:
        pytest.skip(f"--launcher {name} needs {cls.needs}")
    launcher = make_launcher(name, "table", 2 if cls.reads_jobs else None)
    run_table(stores["vector"], tmp_path / "t", modes=["chance", "augmented"], epochs=2, launcher=launcher)
    assert table_rows(tmp_path / "t") == table_rows(local_table)
    for mode in ("chance", "augmented"):
        config = json.loads((tmp_path / "t" / mode / "config.json").read_text())
        assert config["job"] == json.loads((local_table / mode / "config.json").read_text())["job"]


def other_value(option, value):
    """A valid value of `option` other than `value` (None where none is found)."""
    if option.part is not None or option.name in ("device", "allow_external"):
        return None  # another part changes which options apply; the device is this machine's
    found = choices(option)
    if option.kind is bool:
        candidates = [not value]
    elif found:
        candidates = [c for c in found if c != value]
    elif option.kind == "widths":
        candidates = [[7, 3]]
    elif option.kind is int:
        candidates = [(value or 0) + 1, (option.low or 0) + 1, 2]
    elif option.kind is float:
        candidates = [(value or 0.25) * 0.5, 0.5, 0.1]
    else:
        return None
    return next((c for c in candidates if problem(option, option.coerce(c)) is None), None)


@pytest.mark.parametrize("mode", list(METHODS))
@pytest.mark.parametrize("kind", ["vector", "text"])
def test_every_option_of_a_run_is_written_as_a_command_and_parsed_back(mode, kind, stores):
    from cfpairs.store import Store
    from cli.cftrain import run_command

    with Store(stores[kind]) as store:
        task, input_kind = store.task, store.input_kind
    try:
        base = resolve(task, input_kind, mode=mode, strict=False)
    except UserError as exc:  # the mode refuses this store's model (its own line): nothing to write
        assert str(exc).startswith(f"--mode {mode}: ")
        return
    changed = dict(folds=5, fold=2, fold_seed=7, fraction_seed=4)  # what a campaign sets, no campaign flag
    for name, value in base.to_dict().items():
        option = all_options().get(name)
        new = other_value(option, value) if option is not None and name != "mode" else None
        try:  # each other value the run accepts (--max-tokens on vectors is refused, say)
            if new is not None:
                resolve(task, input_kind, mode=mode, strict=False, **{**changed, name: new})
                changed[name] = new
        except UserError:
            pass
    config = resolve(task, input_kind, mode=mode, strict=False, **changed)
    assert len(changed) > 10, changed
    labels = {"mode": mode, "seed": 3, "trial": 1, "options": {"lr": 0.5}, "fold": 2}
    args = run_arguments(stores[kind], "out", config, labels)
    assert args[0] == "run"
    params = run_command.make_context("run", args[1:]).params
    given = {k: v for k, v in params.items() if k not in ("store", "out", "mode", "force", "verify", "job_labels")}
    back = resolve(task, input_kind, mode=params["mode"], **given)
    assert back.to_dict() == config.to_dict()
    assert json.loads(params["job_labels"]) == labels


def test_another_launchers_option_is_refused_by_flag():
    with pytest.raises(UserError, match="^--slurm-time is for --launcher slurm"):
        make_launcher("local", "table", None, {"slurm_time": "10"})
    with pytest.raises(UserError, match="^--command-prefix is for --launcher command"):
        make_launcher("local", "table", None, {"command_prefix": "srun"})
    with pytest.raises(UserError, match="^--jobs is for --launcher local, command"):
        make_launcher("slurm", "table", 2, {})
    with pytest.raises(UserError, match="^--launcher nowhere: unknown"):
        make_launcher("nowhere", "table")


def test_a_failed_command_is_named_with_its_file_and_leaves_no_run(stores, tmp_path):
    launcher = make_launcher("command", "table", 1, {"command_prefix": "false"})
    with pytest.raises(UserError, match=r"augmented: its command failed \(exit 1\).*augmented\.command"):
        run_table(stores["vector"], tmp_path / "t", modes=["augmented"], epochs=1, launcher=launcher)
    assert not (tmp_path / "t" / "augmented").exists()
    assert "cftrain --quiet run" in (tmp_path / "t" / "augmented.command").read_text()
