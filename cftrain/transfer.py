"""Zero-shot transfer columns: a campaign's runs evaluated on other stores (`--transfer NAME=STORE`).

Each run directory keeps its evaluations under `evals/<NAME>.json` (the output of `cftrain eval`,
with the transfer store's content digest), listed in its marker, so a finished table evaluated on
another transfer set later retrains nothing, and an evaluation is redone only when the store under
that name changed. Stores are checked up front: one that does not fit the runs (another vocabulary,
task or label set) is refused before any work.
"""

from __future__ import annotations

import re
from pathlib import Path

from cfpairs.check import check_store
from cfpairs.errors import UserError
from cfpairs.outputs import add_to_marker, signed_json, write_text_atomic
from cfpairs.progress import Progress
from cfpairs.store import Store
from cftrain.evaluate import evaluate_run, signature, signature_mismatch
from cftrain.methods import method
from cftrain.rundir import RunDir, read_json_file, strict_json
from cftrain.runschema import check_eval

EVALS = "evals"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_transfers(specs) -> dict:
    """{name: store path} from NAME=STORE values (strings, or (name, path) pairs as the CLI parses
    them), each name a short file-safe word, given once."""
    out = {}
    for spec in specs or ():
        name, sep, path = (spec[0], "=", spec[1]) if isinstance(spec, tuple) else str(spec).partition("=")
        shown = f"{name}={path}"
        if not sep or not name or not str(path):
            raise UserError(f"--transfer {spec}: expected NAME=STORE, e.g. --transfer yelp=yelp.h5")
        if not NAME.fullmatch(name):
            raise UserError(f"--transfer {shown}: the name {name!r} must be letters, digits, '_', '-' or '.' "
                            "(it names the column and evals/<name>.json)")
        if name in out:
            raise UserError(f"--transfer {shown}: the name {name!r} is given twice")
        out[name] = Path(path)
    return out


def check_transfers(trained: str | Path | dict, transfers: dict, verify: bool = False,
                    allow_external: bool = False, trained_digests=()) -> dict:
    """Each transfer store readable, not the store the runs trained on, and fitting a model trained
    on `trained` (a store, or the signature runs keep in config.json, their stores' digests in
    `trained_digests`: same input and label kind, classes and vocabulary), else a UserError naming
    the option and the difference. Returns {name: content digest}."""
    what, trained_digests = "the runs", set(trained_digests)
    if not isinstance(trained, dict):
        what = f"the runs of {trained}"
        with Store(trained, allow_external) as store:
            trained, trained_digests = signature(store), {store.digest}
    digests = {}
    for name, path in transfers.items():
        try:
            check_store(path, digest=verify, allow_external=allow_external)
        except UserError as exc:
            raise UserError(f"--transfer {name}={path}: {exc}") from None
        with Store(path, allow_external) as other:
            problem = signature_mismatch(trained, signature(other))
            digests[name] = other.digest
        if digests[name] in trained_digests:
            raise UserError(f"--transfer {name}={path}: is the store {what.removeprefix('the runs of ') or 'the runs'} "
                            "trained on (the same content); a transfer column evaluates another store")
        if problem:
            raise UserError(f"--transfer {name}={path}: does not fit {what}: {problem}")
    return digests


def check_names_once(evals_of: dict, transfers: dict, digests: dict, restart: str) -> None:
    """A transfer name names one store: refused (naming both stores) when a run already holds an
    evaluation under that name on another store. `evals_of` {run folder: its evals}; `restart`:
    how the user starts again ("--force starts the table again")."""
    for run, evals in evals_of.items():
        for name, path in transfers.items():
            before = evals.get(name)
            if before is not None and before.get("store_digest") != digests[name]:
                raise UserError(f"--transfer {name}={path}: {eval_path(run, name)} holds an evaluation of another "
                                f"store under that name ({before.get('store')}, digest "
                                f"{str(before.get('store_digest'))[:12]}...); give this one another name{restart}")


def evals_in(folder) -> dict:
    """{run folder: its evals} of every run under a campaign folder (none when it does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {path.parent: read_evals(path.parent) for path in sorted(folder.rglob(EVALS)) if path.is_dir()}


def eval_path(run_dir, name: str) -> Path:
    return Path(run_dir) / EVALS / f"{name}.json"


def read_evals(run_dir) -> dict:
    """{name: the evaluation's JSON} of every transfer evaluated in a run directory."""
    folder = Path(run_dir) / EVALS
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob("*.json")):
        if not NAME.fullmatch(path.stem):
            raise UserError(f"{path}: {path.stem[:40]!r} is not a transfer name (letters, digits, '_', '-', '.')")
        found[path.stem] = check_eval(read_json_file(path), path)
    return found


def evaluate_transfers(run_dirs: list, transfers: dict, digests: dict, device: str = "cpu",
                       write: bool = True, allow_external: bool = False) -> dict:
    """Every run on every transfer store not yet evaluated there (or evaluated on a store that has
    changed since); `write`: kept in each run's evals/ (else only returned: `cftrain collect` never
    writes into the folders it reads). Returns {run_dir: {name: evaluation}} of the new ones."""
    todo = []
    for run in run_dirs:
        if not _trains(run):  # a method that draws its predictions: no model, its cells stay "-"
            continue
        done = read_evals(run)
        todo += [(run, name) for name in transfers if done.get(name, {}).get("store_digest") != digests[name]]
    out = {}
    with Progress(len(todo), "transfer evaluations", unit="evals", every_update=True) as bar:
        for run, name in todo:
            result = evaluate_run(run, transfers[name], device=device, allow_external=allow_external)
            result["transfer"] = name
            out.setdefault(str(run), {})[name] = result
            if write:
                path = eval_path(run, name)
                path.parent.mkdir(exist_ok=True)
                write_text_atomic(path, strict_json(signed_json(result)) + "\n")
                add_to_marker(Path(run), f"{EVALS}/{name}.json")
            bar.update()
    return out


def _trains(run_dir) -> bool:
    return method(RunDir(run_dir).read_config()["mode"]).trains
