"""Shared fixtures: one small store of every store kind, built once per test session."""

from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cfbuild.builders.table import build_table
from cfbuild.builders.toy import build_toy
from cfbuild.builders.toy_regions import build_toy_regions
from cfpairs.store import StoreWriter

if os.environ.get("PYTEST_XDIST_WORKER"):
    # each of pytest's workers has a core to itself: torch's default pool (a thread per core) in every
    # worker would put two threads on each core (a run sets its own --threads; this is for the rest)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# the tests allocate a great many objects (torch modules, h5py handles, click contexts), and the
# default thresholds (700, 10, 10) run a full collection over torch's heap about ten times per
# worker, 1-1.5 s of each worker's time; collections still run, a tenth as often
gc.set_threshold(10_000, 10, 10)

pytest_plugins = ("tests.image_fixtures",)  # `coco`: the image fixture's folders, per module
STORE_KINDS = ("vector", "text", "text_pair", "multilabel", "regions")


def write_text_rows(path: Path, n: int = 8) -> Path:
    """Pair groups g: 'good film g' (1) and its edit 'bad film g' (0); a second text column too."""
    rows = [{"g": i, "a": f"good film {i}", "b": "x", "y": "1"} for i in range(n)] + \
           [{"g": i, "a": f"bad film {i}", "b": "x y", "y": "0"} for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def write_multilabel(path: Path, n: int = 60, classes: int = 3, dim: int = 6, seed: int = 0,
                     empty_val: bool = False) -> Path:
    """Vectors = sum of their classes' prototypes + noise; each original's edit removes its first class."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(classes, dim)).astype(np.float32)
    with StoreWriter(path, task="ml", input_kind="vector", label_kind="multilabel",
                     class_names=[f"c{i}" for i in range(classes)], build={}, sources=[]) as writer:
        for name in ("train", "val", "test"):
            labels = (rng.random((n, classes)) < 0.5).astype(np.float32)
            labels[np.arange(n), rng.integers(0, classes, n)] = 1  # at least one class each
            edited = labels.copy()
            edited[np.arange(n), labels.argmax(1)] = 0
            both = np.concatenate([labels, edited])
            if empty_val and name == "val":
                both[:] = 0
            x = (both @ prototypes + 0.1 * rng.normal(size=(2 * n, dim))).astype(np.float32)
            pairs = np.stack([np.arange(n), n + np.arange(n)], 1) if not (empty_val and name == "val") else None
            writer.write_split(name, {"id": [f"{name}{i}" for i in range(2 * n)],
                                      "is_counterfactual": np.arange(2 * n) >= n, "label": both, "x": x},
                               pairs, ["edited"] * (0 if pairs is None else n))
    return path


PNG = b"\x89PNG\r\n\x1a\n"
LAUNCHER_MODULES = ("cftrain.launchers.local", "cftrain.launchers.command")
REAL = {}  # what `quick_campaigns` replaced, for the tests marked to get it
PICTURES = ("history_png", "curve_png")  # cftrain.plots' drawings


def signature_png(history, path, *args) -> None:
    Path(path).write_bytes(PNG)


@pytest.fixture(scope="session", autouse=True)
def quick_campaigns():
    """Two things that cost a test more than its runs' training, replaced for the session (fixtures
    included): a campaign's default --jobs, the cores available, would start worker processes (each
    importing torch again, beside pytest's own workers) for runs of a second, so campaigns run in
    the test's process unless a test gives --jobs; and a run's history.png and a curve's curve.png
    (matplotlib lays out their text) are their PNG signature. Tests marked e2e get the machine's
    cores, tests marked real_plots real pictures (tests/test_plots.py), and runs in other processes
    draw real ones."""
    import cftrain.plots  # noqa: PLC0415  (light: matplotlib loads when a picture is drawn)

    with pytest.MonkeyPatch.context() as patch:
        for module in LAUNCHER_MODULES:
            patch.setattr(f"{module}.available_cores", lambda: 1)
        for picture in PICTURES:
            REAL[picture] = getattr(cftrain.plots, picture)
            patch.setattr(cftrain.plots, picture, signature_png)
        yield


@pytest.fixture(autouse=True)
def real_where_marked(request, monkeypatch):
    """The real cores (marker e2e) and real pictures (marker real_plots) for one test."""
    if request.node.get_closest_marker("e2e") is not None:
        from cftrain.pool import available_cores  # noqa: PLC0415

        for module in LAUNCHER_MODULES:
            monkeypatch.setattr(f"{module}.available_cores", available_cores)
    if request.node.get_closest_marker("real_plots") is not None:
        for picture in PICTURES:
            monkeypatch.setattr(f"cftrain.plots.{picture}", REAL[picture])


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.h5"
    build_toy(path, n=2000, seed=0)
    return path


@pytest.fixture(scope="session")
def stores(tmp_path_factory) -> dict:
    """{store kind: path}: toy vectors, a text and a text-pair table, multi-label vectors, toy VQA regions."""
    root = tmp_path_factory.mktemp("stores")
    rows = write_text_rows(root / "rows.jsonl")
    build_toy(root / "vector.h5", n=200, seed=0)
    for kind, cols in (("text", ["a"]), ("text_pair", ["a", "b"])):
        build_table({"train": rows, "val": rows, "test": rows}, root / f"{kind}.h5", text_cols=cols,
                    label_col="y", pair_col="g")
    write_multilabel(root / "multilabel.h5")
    build_toy_regions(root / "regions.h5", n=40, seed=0)
    return {kind: root / f"{kind}.h5" for kind in STORE_KINDS}


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    """A toy store, a text store, a trained toy run and a trained text run."""
    root = tmp_path_factory.mktemp("bad")
    build_toy(root / "toy.h5", n=200, seed=0)
    rows = write_text_rows(root / "rows.jsonl")
    build_table({"train": rows, "val": rows}, root / "text.h5", text_cols=["a"], label_col="y", pair_col="g")
    from cftrain.presets import resolve  # noqa: PLC0415  (the trainer only where a fixture trains)
    from cftrain.train import run  # noqa: PLC0415

    run(root / "toy.h5", root / "toy-run", resolve("toy", mode="augmented", epochs=1))
    run(root / "text.h5", root / "text-run", resolve("table", "text", mode="augmented", epochs=1))
    return root


@pytest.fixture
def here(work, tmp_path, monkeypatch):
    """A working folder holding a user's files: a store, a text store, a run, and a thesis."""
    shutil.copy(work / "toy.h5", tmp_path / "toy.h5")
    shutil.copy(work / "text.h5", tmp_path / "text.h5")
    shutil.copytree(work / "toy-run", tmp_path / "run")
    (tmp_path / "thesis.tex").write_text("\\chapter{mine}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------- the quick loop's budget

QUICK_BUDGET = "CFPAIRS_QUICK_BUDGET"  # seconds a test may take in `make test-fast` (the Makefile sets it)
_durations: dict = {}


def pytest_runtest_logreport(report):
    if os.environ.get(QUICK_BUDGET):
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """`make test-fast` names each test over its budget, with the rule that keeps the loop quick."""
    budget = float(os.environ.get(QUICK_BUDGET) or 0)
    over = sorted(((d, n) for n, d in _durations.items() if d > budget), reverse=True) if budget else []
    if over:
        terminalreporter.section(f"over the quick loop's {budget:g} s a test", sep="-")
        for seconds, nodeid in over:
            terminalreporter.write_line(f"{seconds:6.2f}s {nodeid}")
        terminalreporter.write_line("Make it cheaper (a smaller store, one run instead of a table, in this process), or "
                                    "split it: tests/README.md, 'The quick loop'.")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """Once the last test is done, the objects left are frozen: pytest's closing collection (which
    would report an object in a reference cycle whose finaliser fails; such failures met during the
    tests are reported as they happen) and the interpreter's exit then skip a heap of torch, spaCy
    and scikit-learn objects, 0.5 s and about 2 s, which every pytest worker pays before it ends."""
    gc.freeze()
