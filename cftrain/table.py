"""`cftrain table`: every mode, one table like the paper's Table 3; planned here, run by
`cftrain.jobs`, rendered by `cftrain.views`."""

from __future__ import annotations

from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.progress import note
from cfpairs.store import Store
from cftrain.jobs import Job, finished_records, run_campaign
from cftrain.models import model_class
from cftrain.registry import all_options
from cftrain.methods import METHODS, method
from cftrain.presets import SHARED_NAMES, check_some_mode_reads, identity, resolve
from cftrain.reference_rows import collect_references, keep_references, require_library
from cftrain.reference_rows import planned as planned_references
from cftrain.transfer import check_names_once, check_transfers, evals_in, evaluate_transfers
from cftrain.views import table_view, view_files


def fitting_modes(task: str, input_kind: str, overrides: dict, say: bool = False) -> list:
    """Every registered mode a table shows by default that can train this store's model (its default
    rows); with `say`, each mode left out is said with its own reason."""
    fitting = []
    for name in (n for n, cls in METHODS.items() if cls.in_tables):
        try:
            resolve(task, input_kind, strict=False, **{**overrides, "mode": name})
        except UserError as exc:
            if say:
                note(f"the table leaves out {name}: {exc}")
            continue
        fitting.append(name)
    return fitting


def plan_table(task: str, input_kind: str, modes, seeds: list | None, overrides: dict) -> list:
    """One job per (mode, seed), in the registry's order, every config checked before any run;
    folders DIR/<mode>/ (one seed) or DIR/<mode>/seed-<s>/. `modes` None: every mode that fits."""
    names = [m for m in METHODS if m in modes] if modes is not None else \
        fitting_modes(task, input_kind, overrides, say=True)
    check_some_mode_reads(task, input_kind, names, overrides)
    jobs = []
    for name in names:
        for seed in (seeds or [None]):
            config = resolve(task, input_kind, strict=False,
                             **{**overrides, "mode": name, **({} if seed is None else {"seed": seed})})
            jobs.append(Job(name if seed is None else f"{name}/seed-{seed}", config, {"mode": name, "seed": seed}))
    return jobs


def run_table(store_path, out_dir, modes=None, force: bool = False, verify: bool = False,
              jobs: int | None = None, seeds: list | None = None, transfers: dict | None = None,
              launcher=None, reference: bool = True, **overrides) -> dict:
    """Every mode (in the registry's order) into out_dir/<mode>/, then table.json and table.md.
    `seeds`: every mode once per seed, in out_dir/<mode>/seed-<s>/, each row the mean and standard
    error over seeds. Runs go to `jobs` processes (default: the cores this process may use), the
    most expensive first; a table folder run again continues where it stopped. `transfers`
    ({name: store}): every run evaluated on each, one column each (`cftrain.transfer`). `reference`:
    a text table's reference block (`cftrain.reference_rows`), fitted once, whatever the seeds."""
    with Store(store_path, bool(overrides.get("allow_external"))) as store:
        task, input_kind, label_kind = store.task, store.input_kind, store.label_kind
        pairs = store.split("train").pairs_index.shape[0] if "train" in store.splits else 0
    if modes is None and not pairs:  # a default table leaves out the rows that learn from pairs
        modes = [name for name in fitting_modes(task, input_kind, overrides) if not METHODS[name].needs_pairs]
        left_out = ", ".join(name for name in METHODS if METHODS[name].needs_pairs)
        note(f"{store_path}: split train has no pairs: the table leaves out {left_out}")
    planned = plan_table(task, input_kind, modes, seeds, overrides)
    transfers = transfers or {}
    allow = bool(overrides.get("allow_external"))
    digests = check_transfers(store_path, transfers, verify, allow)
    if not force:
        check_names_once(evals_in(out_dir), transfers, digests, ", or --force to start the table again")
        check_same_training(out_dir, planned)
    device = overrides.get("device") or "cpu"
    wanted = planned_references(input_kind, label_kind, [job.config.mode for job in planned], pairs) \
        if reference else []
    if wanted:
        require_library()
    references = []

    def after_runs(folder, records):
        evaluate_transfers([folder / r["folder"] for r in records], transfers, digests, device, allow_external=allow)
        keep_references(folder, store_path, wanted, transfers, digests)
        references[:] = [r for r in collect_references(folder)
                         if (r["reference"]["reference"], r["reference"]["trained_on"]) in wanted]

    records = run_campaign("table", store_path, out_dir, submission_order(planned), jobs, force, verify,
                           desc=f"{task} table", inputs=list(transfers.values()), launcher=launcher,
                           after_runs=after_runs, render=lambda rs: view_files(
                               "table", _in_plan(rs, planned), seeds=seeds, references=references)[0])
    return table_view(_in_plan(records, planned), seeds, references)


# what may differ between the runs of one table: the seed, the mode, and the options only some modes read
TABLE_FREE = {"seed", "fraction_seed", "mode"}


def check_same_training(out_dir, planned: list) -> None:
    """A table folder grows by seeds, modes and transfer sets; a plan whose training options
    (epochs, lr, ...) differ from the runs already there is another table: refused, naming the
    first option that differs and a run that has it."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    shared = {name for name in SHARED_NAMES} | {o.name for o in model_class(planned[0].config.model).options} \
        if planned else set()
    options = all_options()
    for record in finished_records(out_dir):  # options only: no weights hashed
        done = identity(record["config"])
        for job in planned:
            now = identity(job.config.to_dict())
            keys = set(done) | set(now) if now.get("mode") == done.get("mode") else shared & (set(done) | set(now))
            # an option added since that run, at its default, is what the run did: not a change
            changed = sorted(k for k in keys - TABLE_FREE if k in options and
                             done.get(k, options[k].default) != now.get(k, options[k].default))
            if changed:
                key = changed[0]
                raise UserError(f"{out_dir}: holds a table made with other settings (--{key.replace('_', '-')} "
                                f"was {done.get(key)!r} for {record['folder']}, now {now.get(key)!r}); a table grows "
                                "by --seeds, --modes and --transfer; use another --out, or --force to start again")


def _in_plan(records: list, planned: list) -> list:
    """The records in the plan's (row) order."""
    by_folder = {r["folder"]: r for r in records}
    return [by_folder[job.folder] for job in planned]


def submission_order(plan: list) -> list:
    """Jobs, most expensive mode first (`Method.cost`; stable otherwise): with fewer processes than
    runs, long runs started last would leave the other processes idle."""
    return sorted(plan, key=lambda job: -method(job.config.mode).cost)
