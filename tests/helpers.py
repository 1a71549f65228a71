"""Small stores of every input kind, written by the tests themselves."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from cfpairs.store import LinkedFeatures, StoreWriter

VOCAB = ["<pad>", "<unk>", "good", "bad", "film", "a", "man"]
REPO = Path(__file__).resolve().parents[1]
# The real CAD release: CFPAIRS_CAD_DIR (.ci/run sets it), else ../shared/data/cad beside the checkout
CAD_DIR = Path(os.environ.get("CFPAIRS_CAD_DIR", REPO.parent / "shared" / "data" / "cad"))
CAD_MISSING = None if (CAD_DIR / "sentiment").is_dir() else \
    f"the CAD release is not at {CAD_DIR} (set CFPAIRS_CAD_DIR to its root folder, which holds sentiment/ and NLI/)"


def text_columns(prefix: str, texts: list[str], width: int = 4) -> dict:
    tokens = np.zeros((len(texts), width), np.int32)
    lengths = np.zeros(len(texts), np.int32)
    for i, text in enumerate(texts):
        ids = [VOCAB.index(w) if w in VOCAB else 1 for w in text.split()][:width]
        tokens[i, :len(ids)] = ids
        lengths[i] = len(ids)
    return {f"{prefix}text": texts, f"{prefix}tokens": tokens, f"{prefix}length": lengths}


def base_examples(n: int = 4) -> dict:
    """n rows: originals at even rows, counterfactuals at odd rows, labels 0,1,0,1..."""
    return {"id": [f"r{i}" for i in range(n)], "is_counterfactual": np.arange(n) % 2 == 1,
            "label": np.arange(n, dtype=np.int64) % 2}


def examples_for(kind: str, n: int = 4) -> dict:
    ex = base_examples(n)
    words = ["good film", "bad film", "a good man", "a bad xyz"] * (n // 4 + 1)
    if kind == "text":
        ex.update(text_columns("", words[:n]))
    elif kind == "text_pair":
        ex.update(text_columns("premise_", words[:n]))
        ex.update(text_columns("hypothesis_", words[::-1][:n]))
    elif kind == "vector":
        ex["x"] = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    elif kind == "regions":
        ex.update(text_columns("", words[:n]))
        ex["image_row"] = np.arange(n, dtype=np.int64) // 2
        ex["region_mask"] = np.ones((n, 3), bool)
        ex["region_mask"][1::2, 0] = False
    return ex


PAIRS = np.array([[0, 1], [2, 3]])


def write_store(path, kind: str = "vector", features_file=None, **writer_kw) -> dict:
    """Write a 2-split store of `kind`; returns the train examples written."""
    ex = examples_for(kind)
    kw = dict(task="t", input_kind=kind, label_kind="binary", class_names=["neg", "pos"],
              build={"command": "test", "parameters": {}}, sources=[{"file": "x", "size": 1, "sha256": "0"}])
    kw.update(writer_kw)
    with StoreWriter(path, **kw) as writer:
        if kind in ("text", "text_pair", "regions"):
            writer.write_vocab(VOCAB)
        if kind == "regions":
            boxes = np.tile(np.arange(12, dtype=np.float32).reshape(1, 3, 4), (2, 1, 1))
            writer.write_regions([101, 102], boxes, LinkedFeatures(features_file, "image_features"))
        writer.write_split("train", ex, PAIRS, ["edited", "edited"], subsets={"hard": [1, 3]})
        writer.write_split("val", ex, PAIRS[:1], ["edited"])
    return ex


def write_features_file(path, n_images: int = 2, regions: int = 3, dim: int = 5) -> np.ndarray:
    features = np.random.default_rng(0).normal(size=(n_images, regions, dim)).astype(np.float32)
    with h5py.File(path, "w") as h5:
        h5["image_features"] = features
    return features


def snapshot(path: Path):
    """Bytes of a file, or {relative path: sha256} of a folder's files; None when absent."""
    if not path.exists():
        return None
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def refused(program: str, args: list, *fragments: str, out: Path | None = None, code: int = 2) -> str:
    """Run in-process; assert the refusal contract; return the error line."""
    before = snapshot(out) if out is not None else None
    from click.testing import CliRunner  # noqa: PLC0415

    result = CliRunner().invoke(cli_main(program), [str(a) for a in args])
    err = result.stderr
    assert result.exit_code == code, (result.exit_code, err, result.stdout)
    assert "Traceback" not in err and "Traceback" not in result.stdout, err
    errors = [line for line in err.splitlines() if f"{program}" in line and "error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    if out is not None:
        assert snapshot(out) == before, "the output changed"
        assert not list(out.parent.glob(f".{out.name}.*.part")), "a temporary output was left behind"
    return errors[0]


def cli_main(program: str):
    """The click group of `cfbuild` or `cftrain` (only that program imported: cfbuild needs no torch)."""
    import importlib  # noqa: PLC0415
    return importlib.import_module(f"cli.{program}").main


QUICK = ["--epochs", "1"]  # trainings whose numbers do not matter


def ok(program: str, args: list):
    """`program ARGS` through CliRunner, asserted to succeed; the click result."""
    from click.testing import CliRunner  # noqa: PLC0415

    result = CliRunner().invoke(cli_main(program), [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return result


def run_cli(*args, real: bool = False, **kw):
    """`python -m PROGRAM ARGS...` as (returncode, stdout, stderr): in this process through click's
    CliRunner (fast: the unit tier), or with `real` in a subprocess (signals, `python -m`, limits)."""
    if real or kw:
        return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                              cwd=kw.pop("cwd", REPO), **kw)
    from types import SimpleNamespace  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415

    program = cli_main(args[0].split(".")[-1])
    result = CliRunner().invoke(program, [str(a) for a in args[1:]])
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def flip_first_chunk_byte(path: Path, dataset: str) -> None:
    """Corrupt one byte of a dataset's first chunk (its Fletcher-32 checksum then fails)."""
    with h5py.File(path, "r") as h5:
        offset = h5[dataset].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as fh:
        fh.seek(offset + 3)
        byte = fh.read(1)
        fh.seek(offset + 3)
        fh.write(bytes([byte[0] ^ 0xFF]))


def assert_space_gs_equals_input_gs(model, raw, batch: dict, targets, edges, kind: str, atol: float) -> None:
    """GS through `model.data_head`'s space and GS differentiated back to the inputs `raw` give the
    same term, the same supervised rows and the same gradient for every parameter."""
    import pytest  # noqa: PLC0415  (test-only imports: this module also serves store fixtures)
    import torch  # noqa: PLC0415

    from cftrain.gs import gs_loss  # noqa: PLC0415
    results = []
    for in_space in (False, True):
        model.zero_grad()
        if in_space:
            logits, space = model.data_head(raw, batch)
            term, stats = gs_loss(raw, logits, targets, edges, kind, space=space)
        else:
            x = raw.clone().requires_grad_(True)
            term, stats = gs_loss(x, model.head(x, batch), targets, edges, kind, constant_direction=True)
        term.backward()
        results.append((term.item(), stats["rows"], [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                                                     for p in model.parameters()]))
    (term_a, rows_a, grads_a), (term_b, rows_b, grads_b) = results
    assert rows_a == rows_b > 0 and term_a == pytest.approx(term_b, abs=atol)
    for a, b in zip(grads_a, grads_b):
        assert torch.allclose(a, b, atol=atol)


def covering(*axes) -> list:
    """Every combination of the axes' values as pytest params: the quick loop (`make test-fast`)
    runs those that leave at most one axis off its first value (each value of each axis once, the
    others at their first: put the cheapest or most demanding value first), and marks the rest of
    the cross product `matrix` (`make test` runs all of it). A value that is a tuple fills as many
    arguments (an axis of (model, form) pairs, say)."""
    import itertools  # noqa: PLC0415

    import pytest  # noqa: PLC0415

    def kept(combo) -> bool:
        return sum(value != axis[0] for value, axis in zip(combo, axes)) <= 1

    def arguments(combo) -> list:
        return [item for value in combo for item in (value if isinstance(value, tuple) else (value,))]
    return [pytest.param(*arguments(combo), marks=() if kept(combo) else pytest.mark.matrix)
            for combo in itertools.product(*axes)]
