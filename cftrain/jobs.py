"""The one job runner behind `table`, `sweep` and `curve`: those commands only plan jobs.

A campaign folder holds one ordinary run directory per job (`DIR/<job folder>/`), each staged
and renamed when complete, so a finished job is a run directory that exists. Running the same
command again continues: finished jobs whose options agree are kept, the others are run; a job
whose run was made with other options (those that change results: not --device, --jobs,
--threads, --workers; not the store's path, only its content digest) makes the folder another
campaign, refused unless --force. Jobs run in `processes` spawned processes that die with their
parent (a `kill -9` of the command leaves no worker behind), one progress line per finished run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cfpairs.check import check_store
from cfpairs.errors import UserError
from cfpairs.outputs import add_to_marker, check_output, folder_in_place, write_text_atomic
from cfpairs.progress import Progress, note
from cfpairs.store import Store
from cftrain.launchers import make_launcher
from cftrain.methods import method
from cftrain.registry import all_options
from cftrain.presets import RunConfig, identity
from cftrain.late_columns import complete_columns, say_missing
from cftrain.rundir import CONFIG, METRICS, RunDir
from cftrain.transfer import read_evals


@dataclass
class Job:
    folder: str                 # relative to the campaign folder, e.g. "gs/seed-0"
    config: RunConfig
    labels: dict = field(default_factory=dict)  # what views group by: mode, seed, trial and options, fraction


# ---------------------------------------------------------------- campaigns


def refuse_nested_runs(folder: Path, jobs: list, out: Path, kind: str) -> None:
    """A plan whose run folder would lie inside a run already there (a table without --seeds has
    `DIR/<mode>/` runs; one with --seeds plans `DIR/<mode>/seed-<s>/`) is another campaign: refused,
    so that nothing is ever written inside another run's folder."""
    for job in jobs:
        for parent in list((folder / job.folder).relative_to(folder).parents)[:-1]:
            if (folder / parent / CONFIG).exists() or (folder / parent / METRICS).exists():
                raise UserError(f"{out}: {parent} is a run of this {kind}, and the plan puts {job.folder} inside "
                                f"it (a {kind} run with other --seeds?); use another --out, or --force to start again")


def _finished(folder: Path, job: Job, digest: str, out: Path, kind: str) -> bool:
    """Whether `job` already ran in `folder` with the same options (else an error naming the difference)."""
    run_dir = folder / job.folder
    if not run_dir.exists():
        return False
    if not (run_dir / METRICS).is_file() or not (run_dir / CONFIG).is_file():
        raise UserError(f"{out}: {job.folder} is not a finished run; use another --out, or --force to start again")
    done = RunDir(run_dir).read_config()
    before, now = identity(done), identity({**job.config.to_dict(), "store_digest": digest})
    defaults = {name: option.default for name, option in all_options().items()}
    # an option added since that run, at its default, is what the run did: not a change
    changed = [k for k in sorted(set(before) | set(now)) if before.get(k, defaults.get(k)) != now.get(k)]
    if changed:
        key = changed[0]
        what = "the store's content" if key == "store_digest" else f"--{key.replace('_', '-')}"
        raise UserError(f"{out}: holds a {kind} made with other settings ({what} was {before.get(key)!r} for "
                        f"{job.folder}, now {now.get(key)!r}); use another --out, or --force to start again")
    return True


def run_campaign(kind: str, store_path, out, jobs: list, processes: int | None = None, force: bool = False,
                 verify: bool = False, desc: str = "", render=None, after_runs=None, inputs=(),
                 launcher=None) -> list:
    """Run every job of a campaign folder not already finished there; returns every job's record
    ({folder, labels, config, metrics, evals}) in the order of `jobs`. `after_runs(folder, records)`: work
    on the finished runs (transfer evaluations) before `render(records)` -> {file name: text or a
    function writing the path}: the view's files, written into the folder at the end. `inputs`:
    other files the campaign reads (never replaced by its folder). `launcher`: where the runs go
    (`cftrain.launchers`: the default one, with `processes`, when None)."""
    store_path, out = Path(store_path), Path(out)
    inputs = [store_path, *inputs]
    check_output(out, kind, force, inputs=inputs, resumable=not force)
    allow = any(job.config.allow_external for job in jobs)
    verified = check_store(store_path, digest=verify, allow_external=allow)  # once, before the folder is made
    with Store(store_path, allow) as store:
        digest, label_kind = store.digest, store.label_kind
        pairs = store.split("train").pairs_index.shape[0] if "train" in store.splits else 0
    from cftrain.train import checked_labels  # noqa: PLC0415  (the trainer: in the workers too)
    for job in jobs:
        checked_labels(job.config, label_kind)
        method(job.config.mode).check_pairs(pairs, f"split train of {store_path}")
    with folder_in_place(out, kind, force, inputs=inputs) as (folder, resumed):
        if resumed:
            refuse_nested_runs(folder, jobs, out, kind)
        todo = [job for job in jobs if not (resumed and _finished(folder, job, digest, out, kind))]
        for job in todo:
            (folder / job.folder).parent.mkdir(parents=True, exist_ok=True)
        launcher = launcher or make_launcher(None, kind, processes)
        with Progress(len(todo), f"{desc or kind} ({launcher.where(len(todo))})", unit="runs",
                      every_update=True) as bar:
            def done(index, metrics):
                bar.set_postfix(run=todo[index].folder, **_headline(metrics))
                bar.update()
            args = [(str(folder / j.folder), str(store_path), j.config, j.labels, verified) for j in todo]
            launcher.run(folder, todo, args, done, on_progress=lambda i, line: bar.say(f"{todo[i].folder}: {line}"))
        records = [read_record(folder / job.folder, folder) for job in jobs]
        if after_runs is not None:
            after_runs(folder, records)
            records = [read_record(folder / job.folder, folder) for job in jobs]
        say_missing(records, folder)
        if render is not None:
            write_view_files(folder, render(records))
        return records


def _headline(metrics: dict) -> dict:
    value = metrics.get("splits", {}).get("val", {}).get("all", {}).get(metrics.get("metric"))
    return {} if value is None else {f"val_{metrics['metric']}": value}


def read_record(run_dir: Path, root: Path) -> dict:
    """A finished run as a record; columns registered since it was trained are computed from its
    kept predictions (`cftrain.late_columns`), those it cannot have listed under `columns_missing`."""
    run = RunDir(run_dir)
    config, metrics = run.read_config(), run.read_metrics()
    missing = complete_columns(run, config, metrics)
    return {"folder": str(Path(run_dir).relative_to(root)), "labels": config.get("job", {}), "config": config,
            "metrics": metrics, "evals": read_evals(run_dir), **({"columns_missing": missing} if missing else {})}


def collect_records(root) -> list:
    """Every finished run directory under `root` (any depth), as records, in path order; a folder
    that repeats another run (a copy: the same weights, or without weights the same options, seed
    and store) counted once, said; symbolic links to folders are not followed, and said."""
    root = Path(root)
    linked = sorted(str(Path(d, name).relative_to(root)) for d, dirs, _ in os.walk(root)
                    for name in dirs if os.path.islink(os.path.join(d, name)))
    if linked:
        more = f" (and {len(linked) - 1} more)" if len(linked) > 1 else ""
        note(f"{root}: {linked[0]}{more} is a symbolic link: not read (collect reads the folders under {root} only)")
    return once_each(finished_records(root), root)


def finished_records(root) -> list:
    """Every finished run directory under `root` as records, in path order, as they are (no weights
    read: what a command checks its plan against)."""
    root = Path(root)
    found = sorted(p.parent for p in root.rglob(METRICS) if (p.parent / CONFIG).is_file()
                   and not any(part.endswith(".part") for part in p.parent.relative_to(root).parts))
    return [read_record(d, root) for d in found]


def once_each(records: list, root: Path) -> list:
    """The records without repeats of one run: runs whose model.pt is the same byte for byte are one
    run whatever their config.json says (a copy with its seed edited is no new seed); runs without
    weights (methods that draw their predictions) are one run when their options, seed and store
    are. Runs with the same options and seed but other weights are both kept, and said."""
    weights = _shared_weights(records, root)
    by_weights, by_identity, kept, repeats, differing = {}, {}, [], [], []
    for record in records:
        digest = weights.get(record["folder"], "")
        if digest and digest in by_weights:
            repeats.append((record["folder"], by_weights[digest]))
            continue
        key = json.dumps(identity(record["config"]), sort_keys=True)
        others = by_identity.get(key, [])
        if others and not _has_weights(root / record["folder"]):
            repeats.append((record["folder"], others[0]["folder"]))
            continue
        if others:
            differing.append((record["folder"], others[0]["folder"]))
        if digest:
            by_weights[digest] = record["folder"]
        by_identity.setdefault(key, []).append(record)
        kept.append(record)
    for found, what in ((repeats, "repeat(s) another run (the same weights, byte for byte; for a run without "
                                  "weights, the same options, seed and store): counted once"),
                        (differing, "has the same options and seed as another run but other weights: both counted")):
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            note(f"{len(found)} run folder(s) {what}: {found[0][0]} and {found[0][1]}{more}")
    return kept


def _has_weights(run_dir: Path) -> bool:
    return (run_dir / "model.pt").is_file()


def _shared_weights(records: list, root: Path) -> dict:
    """{folder: sha256 of its model.pt} for the runs whose model.pt has the size of another's (only
    those can be copies; the others are never read)."""
    sizes = {}
    for record in records:
        path = root / record["folder"] / "model.pt"
        if path.is_file():
            sizes.setdefault(path.stat().st_size, []).append(record["folder"])
    return {folder: _weights(root / folder) for same in sizes.values() if len(same) > 1 for folder in same}


def _weights(run_dir: Path) -> str:
    """sha256 of a run's model.pt."""
    import hashlib  # noqa: PLC0415
    digest = hashlib.sha256()
    with open(run_dir / "model.pt", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_view_files(folder: Path, files: dict) -> None:
    """The view's files (name -> text, or a callable writing a path) into a campaign folder, listed
    in its marker."""

    for name, content in files.items():
        if callable(content):
            content(folder / name)
        else:
            write_text_atomic(folder / name, content)
    add_to_marker(folder, *files)


def strict(value) -> str:
    return json.dumps(value, indent=2, allow_nan=False) + "\n"
