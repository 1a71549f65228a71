"""`cftrain sweep`: seeded random search over a declared space of run options (DomainBed's
`sweep` + `collect_results` ideas), resumable, selected on val only.

    DIR/<mode>/trial-<t>/seed-<s>/       an ordinary run directory per (mode, trial, seed)
    DIR/summary.json, DIR/summary.md     per mode, trials ranked by mean val over seeds (written last)
    DIR/results.jsonl                    one line per run: options, val, every split (written last)

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
from cftrain.presets import check_some_mode_reads, read_by, resolve
from cftrain.spaces import check_spec, default_space, draw, load_space
from cftrain.transfer import check_transfers, evaluate_transfers
from cftrain.views import sweep_top_runs, sweep_view, view_files

def plan_sweep(task: str, input_kind: str, modes: list, trials: int, seeds: list, space: dict,
               sweep_seed: int, fixed: dict) -> list:
    """One job per (mode, trial, seed), every config checked up front."""
    jobs = []
    with Progress(len(modes) * trials, f"{task} sweep: planning", unit="trials") as bar:
        for mode in modes:
            preset = resolve(task, input_kind, strict=False, **{**fixed, "mode": mode})
            reads = read_by(mode, preset.model, preset.optimizer)
            for trial in range(trials):
                options = {k: v for k, v in draw(space, trial, sweep_seed, preset).items() if k in reads}
                for seed in seeds:
                    config = resolve(task, input_kind, strict=False,
                                     **{**fixed, **options, "mode": mode, "seed": seed})
                    jobs.append(Job(f"{mode}/trial-{trial}/seed-{seed}", config,
                                    {"mode": mode, "trial": trial, "seed": seed, "options": options}))
                bar.update()
    return jobs


def run_sweep(store_path, out_dir, modes: list, trials: int, seeds: list, space_path=None, sweep_seed: int = 0,
              jobs: int | None = None, top: int = 5, force: bool = False, verify: bool = False,
              transfers: dict | None = None, **fixed) -> dict:
    """Run every (mode, trial, seed) not yet finished in out_dir, then write the summary.
    `transfers` ({name: store}): every seed of each mode's `top` trials evaluated on each."""
    with Store(store_path) as store:
        task, input_kind = store.task, store.input_kind
    fixed = {k: v for k, v in fixed.items() if v is not None}
    check_some_mode_reads(task, input_kind, modes, fixed)
    reads = set().union(*(read_by(m, p.model, p.optimizer) for m in modes
                          for p in [resolve(task, input_kind, strict=False, **{**fixed, "mode": m})]))
    space = load_space(space_path) if space_path else default_space(task, reads)
    for key, spec in space.items():
        check_spec(key, spec, space_path or "the default space")
    unread = sorted(set(space) - reads)
    if unread:
        raise UserError(f"{space_path or 'the default space'}: {unread[0]}: none of the modes "
                        f"{', '.join(modes)} reads it")
    planned = plan_sweep(task, input_kind, modes, trials, seeds, space, sweep_seed, fixed)
    transfers = transfers or {}
    digests = check_transfers(store_path, transfers, verify)
    device = fixed.get("device") or "cpu"
    records = run_campaign("sweep", store_path, out_dir, planned, jobs, force, verify, desc=f"{task} sweep",
                           inputs=list(transfers.values()),
                           after_runs=lambda folder, rs: evaluate_transfers(
                               [folder / run for run in sweep_top_runs(rs, top)], transfers, digests, device),
                           render=lambda rs: view_files("sweep", rs, top=top)[0])
    return sweep_view(records, top)
