"""`cftrain table` (every mode, one table like the paper's Table 3) and `cftrain eval` (a run on another store)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

from cfbuild.check import check_store
from cfbuild.errors import UserError
from cfbuild.label_kinds import label_kind
from cfbuild.progress import Progress, set_quiet
from cfbuild.staging import check_output_file, staged_dir
from cfbuild.store import Store
from cftrain.methods import METHODS, method
from cftrain.presets import RunConfig, resolve
from cftrain.rundir import RunDir, write_json_atomic
from cftrain.train import (evaluate, load_splits, open_store, resolve_device, run_into, signature,
                           signature_mismatch)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run_table(store_path, out_dir, modes=tuple(METHODS), force: bool = False, verify: bool = False,
              jobs: int | None = None, **overrides) -> dict:
    """Run every mode (in the registry's order) into out_dir/<mode>/ and write table.json and
    table.md, all in a temporary directory renamed to `out_dir` when the whole table is done.
    Rows run in `jobs` processes (default: the cores this process may use, at most one per row)."""
    with Store(store_path) as store:
        task, input_kind, metric = store.task, store.input_kind, label_kind(store.label_kind).metric
    names = [m for m in METHODS if m in modes]
    configs = {name: resolve(task, input_kind, **{**overrides, "mode": name}) for name in names}  # all checked first
    jobs = max(1, min(jobs or available_cores(), len(names)))
    rows = []
    with staged_dir(out_dir, force) as tmp:
        check_store(store_path, digest=verify)  # once for every row
        for name in names:
            (tmp / name).mkdir()
        results = run_rows([(tmp / name, store_path, configs[name]) for name in names], jobs, task)
        for name, metrics in zip(names, results):
            rows.append({"name": method(name).table_row_name(input_kind), "mode": name,
                         "best_epoch": metrics["best_epoch"], "splits": metrics["splits"],
                         "alignment": metrics.get("alignment", {})})
        table = {"task": task, "store": str(store_path), "metric": metric, "rows": rows}
        write_json_atomic(tmp / "table.json", table)
        (tmp / "table.md").write_text(format_table(table) + "\n")
    return table


def _run_row(job: tuple) -> dict:
    out_dir, store_path, config = job
    return run_into(out_dir, store_path, config, check=False)  # run_table checked the store once


def _quiet_worker() -> None:
    set_quiet(True)  # rows report when they finish, from the parent; SIGINT is the parent's to handle
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_rows(jobs_args: list, jobs: int, task: str) -> list:
    """run_into for each (out_dir, store, config), in order; in `jobs` spawned processes when > 1
    (each single-threaded as its config says). Any failure or interruption stops every row."""
    if jobs == 1:
        return [_run_row(job) for job in jobs_args]
    context = multiprocessing.get_context("spawn")  # fork after torch started threads can hang
    pool = context.Pool(jobs, initializer=_quiet_worker)
    try:
        pending = [pool.apply_async(_run_row, (job,)) for job in jobs_args]
        results = []
        with Progress(len(pending), f"{task} table ({jobs} processes)", unit="rows", every_update=True) as bar:
            for job, result in zip(jobs_args, pending):
                results.append(result.get())
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
    lines = [f"Task `{table['task']}`, {metric} in %, best epoch by val {metric}; alignment: mean cos(g, t) "
             "over the split's pairs.", "", header, "|---|" + "---:|" * (len(columns) + len(aligned))]
    for row in table["rows"]:
        cells = []
        for (split, group), _ in columns:
            values = row["splits"].get(split, {}).get(group)
            cells.append(f"{values[metric]:.1f}" if values and values[metric] is not None else "-")
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
