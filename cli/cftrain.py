"""`cftrain`: train on pair stores with gradient supervision; tables of every mode; evaluation."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from cli.common import ALLOW_EXTERNAL, Group, InputPath, TransferStore, group_options
from cli.options import DECLARED, run_only_options, training_options

MODES = list(DECLARED.modes)  # the method registry's names, in tables' order (without importing it)

STORE = click.argument("store", type=InputPath())
RUN_DIR = InputPath(file_okay=False, dir_okay=True)
FORCE = click.option("--force", is_flag=True,
                     help="Replace an existing --out written by cftrain (only once the new one is complete; "
                          "never a folder holding files cftrain did not write).")
JOBS = click.option("--jobs", type=click.IntRange(min=1),
                    help="Runs in parallel processes, each single-threaded [default: the cores available].")
RESTART = click.option("--force", is_flag=True,
                       help="Erase the folder (only if cftrain wrote all of it) and start again; without it, "
                            "the same command continues a folder where it stopped.")
VERIFY = click.option("--verify", is_flag=True,
                      help="Also check the store's content digest first (reads every stored dataset: "
                           "about as long as `cfbuild verify`).")
TRANSFER = click.option("--transfer", "transfers", multiple=True, type=TransferStore(),
                        help="NAME=STORE, repeatable: every run (a sweep: its top trials) evaluated on STORE, a "
                             "zero-shot column NAME (e.g. yelp=yelp.h5 from cfbuild transfer --vocab-from); "
                             "kept in each run's evals/NAME.json, so adding one later retrains nothing.")
def _launch_option(option):
    """The click decorator of a launcher's own option (`cftrain.launchers.LaunchOption`)."""
    if option.kind == "flag":
        return click.option(option.flag, option.name, is_flag=True, help=option.help)
    if option.kind == "many":
        return click.option(option.flag, option.name, multiple=True, help=option.help)
    kind = click.IntRange(min=option.low) if option.kind is int else str
    shown = f" [default: {option.default}]" if option.default is not None else ""  # unset: not given
    return click.option(option.flag, option.name, type=kind, help=option.help + shown)


def launcher_options(func):
    """--launcher (the registry's names) and every launcher's own options (docs/CLUSTER.md)."""
    from cftrain.launchers import LAUNCHERS, default_launcher, launch_options

    what = "; ".join(f"{name}: {' '.join((cls.__doc__ or '').split())}" for name, cls in LAUNCHERS.items())
    decorators = [click.option("--launcher", type=click.Choice(list(LAUNCHERS)), default=default_launcher(),
                               show_default=True, help=f"Where the runs go. {what}")]
    decorators += [_launch_option(option) for option in launch_options()]
    keys = ["launcher", *(option.name for option in launch_options())]

    @functools.wraps(func)
    def gathered(*args, **kwargs):  # the command receives them as one `launch` dict
        return func(*args, launch={key: kwargs.pop(key) for key in keys}, **kwargs)
    for decorator in reversed(decorators):
        gathered = decorator(gathered)
    return gathered


def make_launcher(kind: str, jobs, launcher, **given):
    """The chosen launcher (`cftrain.launchers.make_launcher`); another launcher's option refused."""
    from cftrain.launchers import make_launcher as build

    return build(launcher, kind, jobs, given)


def run_or_submitted(call):
    """The campaign's result; when the launcher returns once its runs are submitted, its message and exit 0."""
    from cftrain.launchers import Submitted

    try:
        return call()
    except Submitted as done:
        click.echo(str(done))
        raise SystemExit(0) from None


DEVICE = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                      help="Where the model evaluates (auto: cuda when available).")


@click.group(name="cftrain", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def main(debug, quiet):
    """Train on cfpairs stores with gradient supervision (GS).

    \b
    Example:
      cfbuild toy --out toy.h5
      cftrain table toy.h5 --out runs/toy
    """


def registered_modes(trained: bool = False) -> list:
    """The method registry's modes (the command runs: the registry itself, not --help's catalog)."""
    from cftrain.methods import METHODS

    return [name for name, cls in METHODS.items() if cls.trains or not trained]


def parse_job(text: str | None) -> dict | None:
    """--job's JSON object (a campaign's labels of the run), or None."""
    if text is None:
        return None
    from cfpairs.jsontext import strict_loads

    try:
        value = strict_loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc})", param_hint="--job") from None
    if not isinstance(value, dict):
        raise click.BadParameter("expected a JSON object", param_hint="--job")
    return value


def presets_epilog() -> str:
    """What each task's preset sets instead of the defaults the options show (`cftrain/tasks.py`)."""
    from cftrain.tasks import TASKS, preset

    lines = ["\b", "The store's task preset replaces the defaults shown above (a flag given replaces both):"]
    for task in TASKS:
        values = " ".join(f"{k.replace('_', '-')}={(','.join(map(str, v)) or 'none') if isinstance(v, list) else v}"
                          for k, v in preset(task).items())
        lines.append(f"  {task}: {values}")
    lines.append("  other tasks: the defaults shown above.")
    return "\n".join(lines)


@main.command("run", epilog=presets_epilog())
@STORE
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Run directory (written beside it under a temporary name, renamed when complete).")
@click.option("--mode", default=DECLARED.default_mode(), show_default=True, type=click.Choice(MODES),
              help="Training method: " + ", ".join(MODES) + ".")
@training_options
@run_only_options
@click.option("--job", "job_labels", hidden=True, help="JSON: what a campaign knows this run as (kept in config.json; "
                                                      "written by a launcher that starts runs as commands).")
@FORCE
@VERIFY
def run_command(store, out, mode, force, verify, job_labels, **options):
    """Train one mode on STORE; writes config.json, history.jsonl, metrics.json, model.pt, predictions.npz.

    Example: cftrain run imdb.h5 --out runs/imdb-gs --mode gs
    """
    from cfpairs.outputs import check_output
    from cfpairs.store import Store
    from cftrain.presets import resolve
    from cftrain.train import run

    check_output(out, "run", force)
    job = parse_job(job_labels)
    with Store(store, bool(options.get("allow_external"))) as opened:
        config = resolve(opened.task, opened.input_kind, mode=mode, **options)
    metrics = run(store, out, config, force=force, verify=verify, job=job)
    metric = metrics["metric"]
    for split, groups in metrics["splits"].items():
        consistent = metrics.get("consistency", {}).get(split, {}).get("all", {})
        click.echo(f"{split:<14}" + "  ".join(f"{g} {v[metric]} (n={v['n']})" for g, v in groups.items()) +
                   (f"  consistency {consistent['consistency']} (pairs={consistent['pairs']})"
                    if consistent.get("consistency") is not None else ""))
    click.echo(f"best epoch {metrics['best_epoch']}; wrote {out}")


@main.command("table", epilog=presets_epilog())
@STORE
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Table directory: one run directory per mode (and seed), table.json, table.md. Run the "
                   "same command again to continue: finished runs are kept.")
@click.option("--modes", help="Comma-separated modes to run, rows in the paper's order [default: every mode that "
                              "fits the store's model: " + ", ".join(DECLARED.modes_where("in_tables")) + "; on request: " +
                              ", ".join(m for m in MODES if m not in DECLARED.modes_where("in_tables")) + "].")
@JOBS
@click.option("--seeds", help="Comma-separated seeds: every row is the mean ± standard error over them "
                              "(each seed a whole ensemble), e.g. 0,1,2.")
@TRANSFER
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Text stores: the reference block (Naive Bayes over binary uni+bigrams, logistic regression "
                   "over tf-idf uni+bigrams; scikit-learn on the store's texts, regularisation chosen by 5-fold "
                   "on train, one fit each), trained like the augmentation row and, beside a \"without edited "
                   "data\" row, on the originals.")
@launcher_options
@training_options
@RESTART
@VERIFY
def table_command(store, out, modes, jobs, seeds, transfers, reference, force, verify, launch, **options):
    """Every mode on STORE, one table (table.json, table.md; the Markdown is printed).

    \b
    Example:
      cftrain table toy.h5 --out runs/toy
      cftrain table imdb.h5 --out runs/imdb --seeds 0,1,2
      cftrain table imdb.h5 --out runs/imdb --seeds 0,1,2 --transfer yelp=yelp.h5   # adds a column
      cftrain table imdb.h5 --out runs/imdb-gs --modes gs --no-reference
      cftrain table imdb.h5 --out runs/imdb --seeds 0,1,2 --launcher slurm --slurm-partition cpu
    """
    from cfpairs.outputs import check_output
    from cftrain.table import run_table
    from cftrain.transfer import parse_transfers
    from cftrain.views import format_table

    check_output(out, "table", force, resumable=not force)
    chosen = None if modes is None else [m.strip() for m in modes.split(",") if m.strip()]
    known = registered_modes()
    unknown = [m for m in chosen or [] if m not in known]
    if unknown or chosen == []:
        raise click.BadParameter(f"unknown mode(s) {unknown} (known: {', '.join(known)})", param_hint="--modes")
    if seeds is not None:
        if options.pop("seed") is not None:
            raise click.UsageError("give --seed or --seeds, not both")
        seeds = _list(seeds, int, "--seeds")
    chosen_launcher = make_launcher("table", jobs, **launch)
    click.echo(format_table(run_or_submitted(lambda: run_table(
        store, out, modes=chosen, force=force, verify=verify, jobs=jobs, seeds=seeds,
        transfers=parse_transfers(transfers), launcher=chosen_launcher, reference=reference, **options))))


SEED_RANGE = (0, 2 ** 32 - 1)


def _list(value, convert, option):
    """A comma-separated list of distinct values (seeds: integers in 0..2^32-1)."""
    try:
        items = [convert(v.strip()) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value}: a comma-separated list", param_hint=option) from None
    if not items:
        raise click.BadParameter("give at least one value", param_hint=option)
    repeated = sorted({i for i in items if items.count(i) > 1}, key=str)
    if repeated:
        raise click.BadParameter(f"{value}: {', '.join(map(str, repeated))} given twice", param_hint=option)
    if option == "--seeds":
        outside = [i for i in items if not SEED_RANGE[0] <= i <= SEED_RANGE[1]]
        if outside:
            raise click.BadParameter(f"{outside[0]}: seeds are integers in 0..{SEED_RANGE[1]}", param_hint=option)
    return items


@main.command("curve")
@STORE
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Curve directory: one run per mode, fraction and seed, curve.json, curve.png, curve.md.")
@click.option("--fractions", default="1/9,1/8,1/7,1/6,1/5,1/4,1/3,1/2,1/1", show_default=True,
              help="Fractions of the training pair groups (nested subsets).")
@click.option("--modes", default=",".join(DECLARED.modes_where("in_curves")), show_default=True, help="Comma-separated modes.")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds: each a model seed and its own chain of nested subsets.")
@click.option("--split", help="Split whose metric is plotted (default: test, else val).")
@JOBS
@launcher_options
@training_options
@RESTART
@VERIFY
def curve_command(store, out, fractions, modes, seeds, split, jobs, force, verify, launch, **options):
    """A learning curve (the paper's Fig. 5): each mode on growing nested subsets of the pairs.

    \b
    Example:
      cftrain curve toy.h5 --out runs/toy-curve --fractions 1/8,1/4,1/2,1/1 --seeds 0,1,2
    """
    from cfpairs.outputs import check_output
    from cftrain.curve import parse_fractions, run_curve
    from cftrain.views import format_curve

    check_output(out, "curve", force, resumable=not force)
    if options.pop("seed") is not None or options.pop("fraction") is not None:
        raise click.UsageError("curve sets --seed and --fraction itself: use --seeds and --fractions")
    chosen = _list(modes, str, "--modes")
    trained = registered_modes(trained=True)
    unknown = [m for m in chosen if m not in trained]
    if unknown:
        trained = ", ".join(trained)
        raise click.BadParameter(f"{unknown}: not a trained mode ({trained})", param_hint="--modes")
    chosen_launcher = make_launcher("curve", jobs, **launch)
    curve = run_or_submitted(lambda: run_curve(store, out, parse_fractions(fractions), chosen,
                                               _list(seeds, int, "--seeds"), split=split, force=force, jobs=jobs,
                                               verify=verify, launcher=chosen_launcher, **options))
    click.echo(format_curve(curve))
    click.echo(f"wrote {out}/curve.png")


@main.command("sweep")
@STORE
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Sweep directory: a run per mode, trial and seed, results.jsonl, summary.json/md. "
                   "Run again to resume: finished runs are skipped.")
@click.option("--trials", type=click.IntRange(min=1), default=10, show_default=True,
              help="Trials per mode (trial 0: the preset itself).")
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds per trial (each a whole ensemble).")
@click.option("--space", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON or TOML {option: spec}; a spec is a list of values or {"uniform"|"log_uniform"|"int"|'
                   '"log_scale": [low, high]} (log_scale: times the preset). Default: the task\'s own space.')
@click.option("--modes", default=DECLARED.default_mode(), show_default=True,
              help="Comma-separated modes, each with its own trials.")
@click.option("--sweep-seed", type=int, default=0, show_default=True, help="Seeds the trials' draws.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Trials per mode in the summary.")
@click.option("--select", default="val", show_default=True,
              help="How trials are ranked: val (the mean val metric over seeds), or kfold:K (train and val pooled "
                   "and cut into K folds of pair groups; the mean held-out fold over folds and seeds; each mode's "
                   "best trial then retrained on train+val). K-fold overfits a small val less, at K times the runs.")
@JOBS
@TRANSFER
@launcher_options
@training_options
@RESTART
@VERIFY
def sweep_command(store, out, trials, seeds, space, modes, sweep_seed, top, select, jobs, transfers, force, verify,
                  launch, **options):
    """Random search over run options, selected on val, mean ± standard error over seeds.

    \b
    Example:
      cftrain sweep imdb.h5 --out sweeps/imdb --modes augmented,gs --trials 12 --seeds 0,1,2 --ensemble 2
      cftrain sweep imdb.h5 --out sweeps/imdb-kfold --modes gs --trials 8 --select kfold:5
    Options given here (--ensemble 2 above) hold for every trial; the space varies the rest.
    """
    from cftrain.sweep import parse_select, run_sweep
    from cftrain.transfer import parse_transfers
    from cftrain.views import format_summary

    if options.pop("seed") is not None:
        raise click.UsageError("a sweep sets --seed itself: use --seeds")
    parse_select(select)  # before any work
    chosen = _list(modes, str, "--modes")
    unknown = [m for m in chosen if m not in registered_modes(trained=True)]
    if unknown:
        raise click.BadParameter(f"{unknown}: not a trained mode", param_hint="--modes")
    chosen_launcher = make_launcher("sweep", jobs, **launch)
    summary = run_or_submitted(lambda: run_sweep(
        store, out, chosen, trials, _list(seeds, int, "--seeds"), space_path=space, sweep_seed=sweep_seed, jobs=jobs,
        top=top, force=force, verify=verify, transfers=parse_transfers(transfers), select=select,
        launcher=chosen_launcher, **options))
    click.echo(format_summary(summary))
    click.echo(f"wrote {out}/summary.md")


@main.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=RUN_DIR)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The Markdown page.")
@click.option("--force", is_flag=True, help="Replace an existing --out written by cftrain report.")
def report_command(run_dirs, out, force):
    """One Markdown page comparing runs: differing options, metrics, alignment, history plots.

    Example: cftrain report runs/toy/augmented runs/toy/gs --out runs/toy/report.md
    """
    from cftrain.report import write_report

    write_report(list(run_dirs), out, force=force)
    click.echo(f"wrote {out}")


@main.command("eval")
@click.argument("run_dir", type=RUN_DIR)
@STORE
@click.option("--out", type=click.Path(path_type=Path), help="Write the metrics as JSON here.")
@click.option("--predictions", type=click.Path(path_type=Path),
              help="Also write each row's predictions and each pair's badge, every split (JSON), for "
                   "cfbuild view --predictions.")
@click.option("--keep", is_flag=True,
              help="STORE is the run's own: keep its predictions in RUN_DIR/predictions.npz (a run trained before "
                   "runs kept them), so cftrain collect computes every table column for it.")
@DEVICE
@click.option("--force", is_flag=True, help="Replace an existing --out or --predictions written by cftrain eval.")
@VERIFY
@ALLOW_EXTERNAL
def eval_command(run_dir, store, out, predictions, keep, device, force, verify, allow_external):
    """Evaluate a trained run on a store (its own, or another: e.g. a transfer set from cfbuild transfer).

    \b
    Example:
      cftrain eval runs/imdb/gs yelp.h5 --out runs/imdb-gs-yelp.json
      cftrain eval runs/imdb/gs imdb.h5 --predictions gs.json   # then: cfbuild view imdb.h5 --predictions gs.json
      cftrain eval runs/imdb/gs imdb.h5 --keep    # an old run: its predictions kept for later columns
    """
    from cfpairs.outputs import check_output, signed_json, write_page
    from cftrain.evaluate import evaluate_run
    from cftrain.rundir import strict_json

    if predictions is not None:
        check_output(predictions, "json", force, inputs=[run_dir, store], option="--predictions")
    click.echo(strict_json(evaluate_run(run_dir, store, out, device=device, force=force, verify=verify,
                                        allow_external=allow_external, keep=keep)))
    if predictions is not None:
        from cftrain.predict import predictions_page
        page = predictions_page(run_dir, store, allow_external)
        write_page(predictions, "json", strict_json(signed_json(page)) + "\n", force, inputs=[run_dir, store],
                   option="--predictions")
        click.echo(f"wrote {predictions}", err=True)


@main.command("collect")
@click.argument("folder", type=RUN_DIR)
@click.option("--view", type=click.Choice(["table", "sweep", "curve"]),
              help="What to render [default: the folder's own kind: table, sweep or curve].")
@click.option("--out", type=click.Path(path_type=Path),
              help="Also write the view's files (JSON, Markdown, and curve.png) into this new folder.")
@click.option("--split", help="curve: the split whose metric is plotted (default: test, else val).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="sweep: trials per mode.")
@click.option("--transfer", "transfers", multiple=True, type=TransferStore(),
              help="NAME=STORE, repeatable: runs not yet evaluated on STORE are evaluated in memory (FOLDER is "
                   "never written), a column NAME beside those the runs already hold.")
@DEVICE
@FORCE
def collect_command(folder, view, out, split, top, transfers, device, force):
    """Render a table, a sweep summary or a curve from every finished run under FOLDER.

    Runs of separate invocations combine: collect a folder holding several tables (one per
    seed, say) and each row averages over every seed found.

    \b
    Example:
      cftrain collect runs --view table
      cftrain collect runs/imdb-curve --out runs/imdb-curve-again
    """
    from cftrain.collect import collect
    from cftrain.transfer import parse_transfers

    click.echo(collect(folder, view, out=out, split=split, top=top, force=force,
                       transfers=parse_transfers(transfers), device=device))


if __name__ == "__main__":
    main()
