"""`cftrain table` (every mode, one table like the paper's Table 3) and `cftrain eval` (a run on another store)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

from cfpairs.check import check_store
from cfpairs.errors import UserError
from cfpairs.label_kinds import label_kind
from cfpairs.progress import Progress, set_quiet
from cfpairs.staging import check_output_file, staged_dir
from cfpairs.store import Store
from cftrain.methods import METHODS, method
from cftrain.metrics import mean_se
from cftrain.presets import RunConfig, resolve
from cftrain.rundir import RunDir, write_json_atomic
from cftrain.train import (evaluate, load_splits, open_store, resolve_device, run_into, signature,
                           signature_mismatch)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_table(store_path, out_dir, modes=tuple(METHODS), force: bool = False, verify: bool = False,
              jobs: int | None = None, seeds: list | None = None, **overrides) -> dict:
    """Run every mode (in the registry's order) into out_dir/<mode>/ and write table.json and
    table.md, all in a temporary directory renamed to `out_dir` when the whole table is done.
    `seeds`: every mode once per seed, in out_dir/<mode>/seed-<s>/, each row the mean and
    standard error over seeds. Runs go to `jobs` processes (default: the cores this process may
    use, at most one per run)."""
    with Store(store_path) as store:
        task, input_kind, metric = store.task, store.input_kind, label_kind(store.label_kind).metric
    names = [m for m in METHODS if m in modes]
    plan = [(name, seed) for name in names for seed in (seeds or [None])]
    configs = {(name, seed): resolve(task, input_kind, **{**overrides, "mode": name,
                                                          **({} if seed is None else {"seed": seed})})
               for name, seed in plan}  # all checked first
    jobs = max(1, min(jobs or available_cores(), len(plan)))
    with staged_dir(out_dir, force) as tmp:
        check_store(store_path, digest=verify)  # once for every run
        folders = {key: tmp / key[0] / ("" if key[1] is None else f"seed-{key[1]}") for key in plan}
        for folder in folders.values():
            folder.mkdir(parents=True)
        order = submission_order(plan)
        results = dict(zip(order, run_rows([(folders[key], store_path, configs[key]) for key in order], jobs, task)))
        rows = [table_row(name, input_kind, metric, [results[key] for key in plan if key[0] == name], seeds)
                for name in names]
        table = {"task": task, "store": str(store_path), "metric": metric, "seeds": seeds, "rows": rows}
        write_json_atomic(tmp / "table.json", table)
        (tmp / "table.md").write_text(format_table(table) + "\n")
    return table


def submission_order(plan: list) -> list:
    """The (mode, seed) runs, most expensive mode first (`Method.cost`; stable otherwise): with
    fewer processes than runs, long runs started last would leave the other processes idle."""
    return sorted(plan, key=lambda key: -method(key[0]).cost)


def table_row(name: str, input_kind: str, metric: str, results: list, seeds: list | None) -> dict:
    """One mode's row: its run's metrics, or with seeds the mean over seeds of every split, group
    and alignment (with `stderr` beside each mean) and each seed's run under `runs`."""
    row = {"name": method(name).table_row_name(input_kind), "mode": name}
    if seeds is None:
        only = results[0]
        return {**row, "best_epoch": only["best_epoch"], "splits": only["splits"],
                "alignment": only.get("alignment", {})}
    splits = {}
    for split, groups in results[0]["splits"].items():
        splits[split] = {}
        for group, values in groups.items():
            summary = mean_se(r["splits"][split][group][metric] for r in results)
            splits[split][group] = {"n": values["n"], metric: summary["mean"], "stderr": summary["stderr"],
                                    "seeds": summary["n"]}
    alignment = {split: {"cosine": mean_se((r.get("alignment", {}).get(split, {}).get("cosine") for r in results),
                                           digits=4)["mean"]}
                 for split in results[0].get("alignment", {})}
    return {**row, "best_epoch": [r["best_epoch"] for r in results], "splits": splits, "alignment": alignment,
            "runs": [{"seed": seed, "splits": r["splits"]} for seed, r in zip(seeds, results)]}


def _run_row(job: tuple) -> dict:
    out_dir, store_path, config = job
    return run_into(out_dir, store_path, config, check=False)  # run_table checked the store once


def _quiet_worker() -> None:
    set_quiet(True)  # rows report when they finish, from the parent; SIGINT is the parent's to handle
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_rows(jobs_args: list, jobs: int, task: str, run=None, on_done=None) -> list:
    """`run` (default: run_into) for each (out_dir, store, config), in order; in `jobs` spawned
    processes when > 1 (each single-threaded as its config says); `on_done(job, result)` as each
    result is collected. Any failure or interruption stops every row."""
    run = run or _run_row
    if jobs == 1:
        results = []
        for job in jobs_args:
            results.append(run(job))
            if on_done:
                on_done(job, results[-1])
        return results
    context = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
    pool = context.Pool(jobs, initializer=_quiet_worker)
    try:
        pending = [pool.apply_async(run, (job,)) for job in jobs_args]
        results = []
        with Progress(len(pending), f"{task} ({jobs} processes)", unit="runs", every_update=True) as bar:
            for job, result in zip(jobs_args, pending):
                results.append(result.get())
                if on_done:
                    on_done(job, results[-1])
                bar.set_postfix(done=job[2].mode)
                bar.update()
        pool.close()
        return results
    finally:
        pool.terminate()
        pool.join()


def format_table(table: dict) -> str:
    """Markdown: one row per method, columns split/group (metric in %, n in the header)."""
    metric = table["metric"]
    columns = []
    for row in table["rows"]:
        for split, groups in row["splits"].items():
            if split == "train":
                continue
            for group, values in groups.items():
                if (split, group) not in [c[0] for c in columns]:
                    columns.append(((split, group), values["n"]))
    aligned = list(dict.fromkeys(s for row in table["rows"] for s in row.get("alignment", {}) if s != "train"))
    header = "| method | " + " | ".join([f"{s} {g} (n={n})" for (s, g), n in columns] +
                                       [f"{s} alignment" for s in aligned]) + " |"
    seeds = table.get("seeds")
    over = f"mean ± standard error over seeds {', '.join(map(str, seeds))}, " if seeds else ""
    lines = [f"Task `{table['task']}`, {metric} in %, {over}best epoch by val {metric}; alignment: mean cos(g, t) "
             "over the split's pairs.", "", header, "|---|" + "---:|" * (len(columns) + len(aligned))]
    for row in table["rows"]:
        cells = []
        for (split, group), _ in columns:
            values = row["splits"].get(split, {}).get(group)
            if not values or values[metric] is None:
                cells.append("-")
            else:
                se = values.get("stderr")
                cells.append(f"{values[metric]:.1f}" + (f" ± {se:.1f}" if se is not None else ""))
        for split in aligned:
            value = row.get("alignment", {}).get(split, {}).get("cosine")
            cells.append("-" if value is None else f"{value:.3f}")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_run(run_dir, store_path, out=None, device: str = "auto", force: bool = False,
                 verify: bool = False) -> dict:
    """Metrics of a trained run on every split of another store (e.g. a transfer set); the store's
    splits are loaded as the run loaded its own (token truncation, answer types)."""
    if out is not None:
        check_output_file(out, force)
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
        write_json_atomic(Path(out), result)
    return result
