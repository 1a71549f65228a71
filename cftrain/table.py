"""`cftrain table` (every mode, one table like the paper's Table 3: planned here, run by
`cftrain.jobs`, rendered by `cftrain.views`) and `cftrain eval` (a run on another store)."""

from __future__ import annotations

from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.label_kinds import label_kind
from cfpairs.outputs import check_output, signed_json, write_page
from cfpairs.store import Store
from cftrain.jobs import Job, available_cores, run_calls, run_campaign  # noqa: F401  (re-exported)
from cftrain.methods import METHODS, method
from cftrain.presets import RunConfig, resolve
from cftrain.rundir import RunDir, strict_json
from cftrain.train import evaluate, load_splits, open_store, resolve_device, signature, signature_mismatch
from cftrain.views import format_table, table_view, view_files  # noqa: F401  (re-exported)


def plan_table(task: str, input_kind: str, modes, seeds: list | None, overrides: dict) -> list:
    """One job per (mode, seed), in the registry's order, every config checked before any run;
    folders DIR/<mode>/ (one seed) or DIR/<mode>/seed-<s>/."""
    names = [m for m in METHODS if m in modes]
    jobs = []
    for name in names:
        for seed in (seeds or [None]):
            config = resolve(task, input_kind, **{**overrides, "mode": name, **({} if seed is None else {"seed": seed})})
            jobs.append(Job(name if seed is None else f"{name}/seed-{seed}", config, {"mode": name, "seed": seed}))
    return jobs


def run_table(store_path, out_dir, modes=tuple(METHODS), force: bool = False, verify: bool = False,
              jobs: int | None = None, seeds: list | None = None, **overrides) -> dict:
    """Every mode (in the registry's order) into out_dir/<mode>/, then table.json and table.md.
    `seeds`: every mode once per seed, in out_dir/<mode>/seed-<s>/, each row the mean and standard
    error over seeds. Runs go to `jobs` processes (default: the cores this process may use), the
    most expensive first; a table folder run again continues where it stopped."""
    with Store(store_path) as store:
        task, input_kind = store.task, store.input_kind
    planned = plan_table(task, input_kind, modes, seeds, overrides)
    records = run_campaign("table", store_path, out_dir, submission_order(planned), jobs, force, verify,
                           desc=f"{task} table", render=lambda rs: view_files("table", _in_plan(rs, planned),
                                                                              seeds=seeds)[0])
    return table_view(_in_plan(records, planned), seeds)


def _in_plan(records: list, planned: list) -> list:
    """The records in the plan's (row) order."""
    by_folder = {r["folder"]: r for r in records}
    return [by_folder[job.folder] for job in planned]


def submission_order(plan: list) -> list:
    """Jobs, most expensive mode first (`Method.cost`; stable otherwise): with fewer processes than
    runs, long runs started last would leave the other processes idle."""
    return sorted(plan, key=lambda job: -method(job.config.mode).cost)


def evaluate_run(run_dir, store_path, out=None, device: str = "auto", force: bool = False,
                 verify: bool = False) -> dict:
    """Metrics of a trained run on every split of another store (e.g. a transfer set); the store's
    splits are loaded as the run loaded its own (token truncation, answer types)."""
    if out is not None:
        check_output(out, "json", force, inputs=[run_dir, store_path])
    rundir = RunDir(run_dir)
    rundir.check_trained()
    config_values = rundir.read_config()
    known = set(RunConfig.__dataclass_fields__)
    config = RunConfig(**{k: v for k, v in config_values.items() if k in known})
    target = resolve_device(device)
    with open_store(store_path, verify) as store:
        if "store_signature" not in config_values:
            raise UserError(f"{run_dir}: config.json has no store_signature (written by an older cftrain?); "
                            "train the run again")
        problem = signature_mismatch(config_values["store_signature"], signature(store))
        if problem:
            raise UserError(f"{store_path}: does not fit the run {run_dir}: {problem}")
        members = rundir.load_members()
        splits = load_splits(store, config, training=False)
        members = [m.to(target) for m in members]
        result = {"run": str(run_dir), "store": str(store_path), "task": store.task,
                  "metric": label_kind(store.label_kind).metric,
                  "splits": evaluate(members, splits, store.label_kind, target)}
    if out:
        write_page(out, "json", strict_json(signed_json(result)) + "\n", force, inputs=[run_dir, store_path])
    return result
