"""`cftrain sweep`: seeded random search over a declared space of run options (DomainBed's
`sweep` + `collect_results` ideas), resumable, selected on val only.

    DIR/<mode>/trial-<t>/seed-<s>/       an ordinary run directory per (mode, trial, seed)
    DIR/summary.json, DIR/summary.md     per mode, trials ranked by mean val over seeds (written last)
    DIR/results.jsonl                    one line per run: options, val, every split (written last)

With `--select kfold:K` each (mode, trial, seed) is K runs, `.../seed-<s>/fold-<f>/`, each trained
on the other folds of train+val and selected on fold f (`cftrain.folds`); trials are ranked by the
mean over folds and seeds, and each mode's best is retrained on all of train+val, one run per seed,
in `DIR/<mode>/final/trial-<t>-epochs-<E>/seed-<s>/` (E: the median best epoch of its fold runs).

Trial 0 is the preset itself; trial t > 0 draws every option of the space from a generator
seeded by (sweep seed, t), so a trial means the same options whatever --trials, --modes or
--seeds say, and a sweep killed and started again skips the runs already finished (the runner,
`cftrain.jobs`, compares each finished run's options with the plan's). Options a mode does not
read (the GS weight for augmentation) are left out of its trials.
"""

from __future__ import annotations

from cfpairs.errors import UserError
from cfpairs.progress import Progress
from cfpairs.store import Store
from cftrain.jobs import Job, run_campaign
from cftrain.presets import check_some_mode_reads, parts_of, read_by, resolve
from cftrain.spaces import check_spec, default_space, draw, load_space
from cftrain.transfer import check_names_once, check_transfers, evals_in, evaluate_transfers
from cftrain.views import refit_epochs, sweep_top_runs, sweep_view, view_files

def parse_select(text: str | None) -> int | None:
    """--select val (None) or kfold:K (K >= 2)."""
    if text in (None, "val"):
        return None
    kind, _, k = text.partition(":")
    if kind != "kfold" or not k.isdigit() or not 2 <= int(k) <= 100:
        raise UserError(f"--select {text}: choose val or kfold:K with K in 2..100, e.g. kfold:5")
    return int(k)


def plan_sweep(task: str, input_kind: str, modes: list, trials: int, seeds: list, space: dict,
               sweep_seed: int, fixed: dict, folds: int | None = None) -> list:
    """One job per (mode, trial, seed), every config checked up front; with `folds`, one per fold
    too (its val: that fold of train+val)."""
    jobs = []
    with Progress(len(modes) * trials, f"{task} sweep: planning", unit="trials") as bar:
        for mode in modes:
            preset = resolve(task, input_kind, strict=False, **{**fixed, "mode": mode})
            reads = read_by(parts_of(preset))
            for trial in range(trials):
                options = {k: v for k, v in draw(space, trial, sweep_seed, preset).items() if k in reads}
                for seed in seeds:
                    for fold in range(folds) if folds else [None]:
                        cv = {"folds": folds, "fold": fold, "fold_seed": sweep_seed} if folds else {}
                        config = resolve(task, input_kind, strict=False,
                                         **{**fixed, **options, **cv, "mode": mode, "seed": seed})
                        jobs.append(Job(f"{mode}/trial-{trial}/seed-{seed}" + (f"/fold-{fold}" if folds else ""),
                                        config, {"mode": mode, "trial": trial, "seed": seed, "options": options,
                                                 **({"fold": fold} if folds else {})}))
                bar.update()
    return jobs


def run_sweep(store_path, out_dir, modes: list, trials: int, seeds: list, space_path=None, sweep_seed: int = 0,
              jobs: int | None = None, top: int = 5, force: bool = False, verify: bool = False,
              transfers: dict | None = None, select: str | None = None, launcher=None, **fixed) -> dict:
    """Run every (mode, trial, seed) not yet finished in out_dir, then write the summary.
    `transfers` ({name: store}): every seed of each mode's `top` trials evaluated on each.
    `select` "kfold:K": trials ranked over K folds of train+val, each mode's best retrained."""
    folds = parse_select(select)
    with Store(store_path, bool(fixed.get("allow_external"))) as store:
        task, input_kind = store.task, store.input_kind
    fixed = {k: v for k, v in fixed.items() if v is not None}
    check_some_mode_reads(task, input_kind, modes, fixed)
    reads = set().union(*(read_by(parts_of(p)) for m in modes
                          for p in [resolve(task, input_kind, strict=False, **{**fixed, "mode": m})]))
    space = load_space(space_path) if space_path else default_space(task, reads)
    for key, spec in space.items():
        check_spec(key, spec, space_path or "the default space")
    unread = sorted(set(space) - reads)
    if unread:
        raise UserError(f"{space_path or 'the default space'}: {unread[0]}: none of the modes "
                        f"{', '.join(modes)} reads it")
    planned = plan_sweep(task, input_kind, modes, trials, seeds, space, sweep_seed, fixed, folds)
    transfers = transfers or {}
    allow = bool(fixed.get("allow_external"))
    digests = check_transfers(store_path, transfers, verify, allow)
    if not force:
        check_names_once(evals_in(out_dir), transfers, digests, ", or --force to start the sweep again")
    device = fixed.get("device") or "cpu"
    campaign = dict(inputs=list(transfers.values()), launcher=launcher,
                    after_runs=lambda folder, rs: evaluate_transfers(
                        [folder / run for run in sweep_top_runs(rs, top)], transfers, digests, device,
                        allow_external=allow),
                    render=lambda rs: view_files("sweep", rs, top=top)[0])
    if folds:  # the folds first; then each mode's best trial retrained, in the same (resumable) folder
        records = run_campaign("sweep", store_path, out_dir, planned, jobs, force, verify,
                               desc=f"{task} sweep ({folds} folds)", launcher=launcher)
        planned += refits(task, input_kind, sweep_view(records, top), seeds, sweep_seed, fixed)
        force = verify = False  # the folder is ours now, the store was checked
    records = run_campaign("sweep", store_path, out_dir, planned, jobs, force, verify, desc=f"{task} sweep",
                           **campaign)
    return sweep_view(records, top)


def refits(task: str, input_kind: str, summary: dict, seeds: list, sweep_seed: int, fixed: dict) -> list:
    """Per mode, its best trial over the folds trained on all of train+val, one run per seed, for
    the median of its fold runs' best epochs (no val is left to choose an epoch)."""
    jobs = []
    for mode, entries in summary["modes"].items():
        best = entries[0]
        epochs = refit_epochs(best)
        for seed in seeds:
            config = resolve(task, input_kind, strict=False, **{**fixed, **best["options"], "mode": mode, "seed": seed,
                                                                "folds": summary["folds"], "fold": None,
                                                                "fold_seed": sweep_seed, "epochs": epochs})
            jobs.append(Job(f"{mode}/final/trial-{best['trial']}-epochs-{epochs}/seed-{seed}", config,
                            {"mode": mode, "trial": best["trial"], "seed": seed, "options": best["options"],
                             "final": True}))
    return jobs
