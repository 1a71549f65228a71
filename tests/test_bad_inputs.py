"""Bad input, as a new user would give it, to `cfbuild` and `cftrain`. Every case asserts: the
exit code, one error line naming the file or option and the problem, no traceback, nothing
under the output name, and any previous output unchanged (signals and the CLI itself:
test_signals_cli.py)."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cfbuild.builders.table import build_table
from cfpairs.store import StoreWriter
from cftrain.models import MODELS
from cftrain.registry import readers
from cftrain.presets import resolve
from cftrain.train import run
from cli.cfbuild import main as cfbuild_main
from cli.cftrain import main as cftrain_main
from tests.helpers import flip_first_chunk_byte, refused
from tests.vqa_fixtures import build as build_vqa_fixture



# ---------------------------------------------------------------- options, before any work


def models_for(kind: str) -> str:
    """The registry's models for an input kind, as messages list them."""
    return ", ".join(sorted(name for name, cls in MODELS.items() if kind in cls.input_kinds))


OPTION_CASES = {
    "lr nan": (["--lr", "nan"], "'--lr': 'nan' is not a finite number"),
    "lr zero": (["--lr", "0"], "'--lr': 0.0 must be > 0"),
    "lr word": (["--lr", "fast"], "'--lr': 'fast' is not a number"),
    "gs-weight nan": (["--gs-weight", "nan"], "'--gs-weight': 'nan' is not a finite number"),
    "gs-weight inf": (["--gs-weight", "inf"], "'--gs-weight': 'inf' is not a finite number"),
    "gs-weight negative": (["--gs-weight", "-1"], "'--gs-weight': -1.0 must be >= 0"),
    "hidden zero": (["--hidden", "0"], "'--hidden': 0: must be comma-separated layer widths >= 1"),
    "hidden word": (["--hidden", "wide"], "'--hidden': wide: comma-separated layer widths"),
    "ensemble zero": (["--ensemble", "0"], "'--ensemble'"),
    "epochs zero": (["--epochs", "0"], "'--epochs'"),
    "patience zero": (["--patience", "0"], "'--patience'"),
    "batch size one": (["--batch-size", "1"], "'--batch-size'"),
    "threads zero": (["--threads", "0"], "'--threads'"),
    "unknown mode": (["--mode", "nope"], "'--mode'"),
    "unknown optimizer": (["--optimizer", "sgd"], "'--optimizer'"),
    "model for text on vectors": (["--model", "bow"], "--model bow: does not fit the store's input kind 'vector' "
                                                      f"(models for vector: {models_for('vector')})"),
    "unknown model": (["--model", "resnet"], "'--model': 'resnet' is not one of " +
                      ", ".join(f"'{name}'" for name in sorted(MODELS))),
    "rho one": (["--rho", "1"], "'--rho': 1.0 must be < 1"),
    "eps zero": (["--eps", "0"], "'--eps': 0.0 must be > 0"),
    "embed-scale nan": (["--embed-scale", "nan"], "'--embed-scale': 'nan' is not a finite number"),
    "unknown embed-init": (["--embed-init", "xavier"], "'--embed-init'"),
    "unknown random-sign": (["--random-sign", "both"], "'--random-sign'"),
    "rho with adam": (["--optimizer", "adam", "--rho", "0.5"], "--rho 0.5: the optimizer adam does not read it "
                                                                f"(optimizers that do: "
                                                                f"{', '.join(readers('rho')['optimizer'])})"),
    "embeddings for a model without words": (["--embeddings", "glove-6b-50d"], "--embeddings glove-6b-50d: the model "
                                                                               "mlp does not read it (models that do: "
                                                                               f"{', '.join(readers('embeddings')['model'])})"),
}


def test_sweep_refuses_a_bad_space_before_any_run(work, tmp_path):
    space = tmp_path / "space.json"
    space.write_text('{"lr": {"log_uniform": [0, 1]}}')
    refused("cftrain", ["sweep", work / "toy.h5", "--out", tmp_path / "s", "--space", space],
            f"{space}: lr: a spec is", out=tmp_path / "s")
    space.write_text('{"batch_size": [1, 32]}')  # a drawn value an option refuses: checked for every trial first
    refused("cftrain", ["sweep", work / "toy.h5", "--out", tmp_path / "s", "--space", space, "--trials", "40"],
            "space.json: batch_size: 1: must be an integer >= 2", out=tmp_path / "s")


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_cftrain_run_refuses_bad_options(work, tmp_path, case):
    args, fragment = OPTION_CASES[case]
    refused("cftrain", ["run", work / "toy.h5", "--out", tmp_path / "r", *args], fragment, out=tmp_path / "r")


def test_model_for_vectors_on_a_text_store(work, tmp_path):
    refused("cftrain", ["run", work / "text.h5", "--out", tmp_path / "r", "--model", "mlp"],
            f"--model mlp: does not fit the store's input kind 'text' (models for text: {models_for('text')})",
            out=tmp_path / "r")


def test_table_refuses_unknown_modes(work, tmp_path):
    refused("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "t", "--modes", "gs,magic"],
            "unknown mode(s) ['magic']", out=tmp_path / "t")


def test_python_api_checks_options_too():
    from cfpairs.errors import UserError
    with pytest.raises(UserError, match="--lr nan: must be a finite number > 0"):
        resolve("toy", "vector", lr=float("nan"))
    with pytest.raises(UserError, match="--hidden 64,0: must be comma-separated layer widths >= 1"):
        resolve("toy", "vector", hidden=[64, 0])


BUILD_OPTION_CASES = {
    "toy spurious nan": (["toy", "--spurious", "nan"], "'--spurious': 'nan' is not a finite number"),
    "toy spurious above one": (["toy", "--spurious", "1.5"], "'--spurious': 1.5 must be <= 1"),
    "toy n zero": (["toy", "--n", "0"], "'--n'"),
    "toy-vqa cf-rate inf": (["toy-vqa", "--cf-rate", "inf"], "'--cf-rate': 'inf' is not a finite number"),
}


@pytest.mark.parametrize("case", sorted(BUILD_OPTION_CASES))
def test_cfbuild_refuses_bad_options(tmp_path, case):
    args, fragment = BUILD_OPTION_CASES[case]
    refused("cfbuild", [*args, "--out", tmp_path / "s.h5"], fragment, out=tmp_path / "s.h5")


def test_vqa_threshold_nan(tmp_path):
    refused("cfbuild", ["vqa", "--vqacp-dir", tmp_path, "--features", __file__, "--hints", __file__,
                        "--threshold", "nan", "--out", tmp_path / "v.h5"],
            "'--threshold': 'nan' is not a finite number", out=tmp_path / "v.h5")


def test_device_cuda_without_cuda(work, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    refused("cftrain", ["run", work / "toy.h5", "--out", tmp_path / "r", "--device", "cuda"],
            "--device cuda: no CUDA device is available", out=tmp_path / "r")


# ---------------------------------------------------------------- run directories

def test_run_refuses_an_existing_run_without_force(work, tmp_path):
    shutil.copytree(work / "toy-run", tmp_path / "r")
    refused("cftrain", ["run", work / "toy.h5", "--out", tmp_path / "r"],
            f"--out {tmp_path / 'r'}: already exists and is not empty (use --force", out=tmp_path / "r")


def test_table_refuses_an_existing_table_without_force(work, tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "table.md").write_text("mine")
    refused("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "t", "--modes", "chance"],
            "already exists and is not empty", out=tmp_path / "t")


def test_out_is_a_file(work, tmp_path):
    (tmp_path / "r").write_text("not a folder")
    refused("cftrain", ["run", work / "toy.h5", "--out", tmp_path / "r"], "is a file, not a folder",
            out=tmp_path / "r")


def test_force_replaces_only_with_a_complete_run(work, tmp_path, monkeypatch):
    import cftrain.train as train
    from cfpairs.errors import UserError

    shutil.copytree(work / "toy-run", tmp_path / "r")

    def crash(*args, **kwargs):
        raise UserError("simulated failure in the middle of training")

    monkeypatch.setattr(train, "fit", crash)
    refused("cftrain", ["run", work / "toy.h5", "--out", tmp_path / "r", "--force"],
            "simulated failure", out=tmp_path / "r")


def test_force_replaces_a_run_when_complete(work, tmp_path):
    shutil.copytree(work / "toy-run", tmp_path / "r")
    result = CliRunner().invoke(cftrain_main, ["run", str(work / "toy.h5"), "--out", str(tmp_path / "r"),
                                               "--force", "--epochs", "1", "--mode", "gs"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [".cfpairs", "config.json", "history.jsonl",
                                                                  "history.png", "metrics.json", "model.pt",
                                                                  "predictions.npz"]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["mode"] == "gs"


def test_force_keeps_a_run_holding_a_file_of_the_user(work, tmp_path):
    shutil.copytree(work / "toy-run", tmp_path / "r")
    (tmp_path / "r" / "notes.txt").write_text("mine")
    refused("cftrain", ["run", work / "toy.h5", "--out", tmp_path / "r", "--force", "--epochs", "1"],
            "holds files cfpairs did not write (notes.txt)", out=tmp_path / "r")


def test_run_files_share_one_permission(work):
    modes = {p.name: p.stat().st_mode & 0o777 for p in (work / "toy-run").iterdir()}
    umask = os.umask(0)
    os.umask(umask)
    assert set(modes.values()) == {0o666 & ~umask}, modes
    assert (work / "toy-run").stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.parametrize("missing", ["model.pt", "metrics.json", "history.jsonl"])
def test_eval_refuses_an_incomplete_run(work, tmp_path, missing):
    shutil.copytree(work / "toy-run", tmp_path / "r")
    (tmp_path / "r" / missing).unlink()
    refused("cftrain", ["eval", tmp_path / "r", work / "toy.h5"], "incomplete run directory", f"missing {missing}")


def test_eval_refuses_a_chance_run(work, tmp_path):
    run(work / "toy.h5", tmp_path / "c", resolve("toy", mode="chance"))
    refused("cftrain", ["eval", tmp_path / "c", work / "toy.h5"], "a chance run has no trained model")


def test_eval_out_exists(work, tmp_path):
    (tmp_path / "m.json").write_text("{}")
    refused("cftrain", ["eval", work / "toy-run", work / "toy.h5", "--out", tmp_path / "m.json"],
            "already exists (use --force", out=tmp_path / "m.json")


# ---------------------------------------------------------------- eval: the store must fit the run

def _vector_store(path, classes=("negative", "positive"), label_kind="binary", dim=10):
    labels = np.array([0, 1, 0, 1])
    label = np.eye(2, dtype=np.float32)[labels] if label_kind == "multilabel" else labels
    with StoreWriter(path, task="toy", input_kind="vector", label_kind=label_kind, class_names=list(classes),
                     build={}, sources=[]) as writer:
        for name in ("train", "val"):
            writer.write_split(name, {"id": ["a", "b", "c", "d"], "is_counterfactual": np.zeros(4, bool),
                                      "label": label, "x": np.zeros((4, dim), np.float32)})
    return path


def test_eval_store_of_another_input_kind(work):
    refused("cftrain", ["eval", work / "toy-run", work / "text.h5"],
            "does not fit the run", "its input kind is 'text', the run was trained on 'vector'")


def test_eval_store_of_another_label_kind(work, tmp_path):
    refused("cftrain", ["eval", work / "toy-run", _vector_store(tmp_path / "m.h5", label_kind="multilabel")],
            "its label kind is 'multilabel', the run was trained on 'binary'")


def test_eval_store_with_other_classes(work, tmp_path):
    with h5py.File(work / "toy.h5") as h5:
        classes = json.loads(h5.attrs["class_names"])
    other = [c + "-other" for c in classes]
    refused("cftrain", ["eval", work / "toy-run", _vector_store(tmp_path / "c.h5", classes=other)],
            f"its classes is {other!r}")


def test_eval_store_with_another_vocabulary_of_the_same_size(work, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(work.joinpath("rows.jsonl").read_text().replace("good", "fine").replace("film", "movie"))
    build_table({"train": rows, "val": rows}, tmp_path / "other.h5", text_cols=["a"], label_col="y", pair_col="g")
    with h5py.File(tmp_path / "other.h5") as a, h5py.File(work / "text.h5") as b:
        assert a["vocab"].shape == b["vocab"].shape  # same size: only the words differ
    refused("cftrain", ["eval", work / "text-run", tmp_path / "other.h5"], "its vocabulary differs from the run's")


# ---------------------------------------------------------------- the trainer trusts no store

@pytest.mark.parametrize("command", ["run", "table", "curve"])
def test_damaged_chunk_is_found_before_training(work, tmp_path, command):
    shutil.copy(work / "toy.h5", tmp_path / "d.h5")
    flip_first_chunk_byte(tmp_path / "d.h5", "train/examples/x")
    refused("cftrain", [command, tmp_path / "d.h5", "--out", tmp_path / "r"], "dataset /train/examples/x cannot be read",
            out=tmp_path / "r")


def test_digest_mismatch_with_verify(work, tmp_path):
    shutil.copy(work / "toy.h5", tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5", "r+") as h5:
        h5["val/examples/x"][0, 5] += 1.0  # checksums rewritten: only the digest can tell
    refused("cftrain", ["run", tmp_path / "d.h5", "--out", tmp_path / "r", "--verify"], "content_digest mismatch",
            out=tmp_path / "r")


def test_moved_feature_file(tmp_path):
    store = build_vqa_fixture(tmp_path)
    (tmp_path / "feats.h5").rename(tmp_path / "elsewhere.h5")
    refused("cftrain", ["run", store, "--out", tmp_path / "r", "--allow-external"],
            "feats.h5, which cannot be found (linked file moved?)", out=tmp_path / "r")


def test_not_a_store(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    refused("cftrain", ["run", tmp_path / "x.h5", "--out", tmp_path / "r"], "cannot open as HDF5", out=tmp_path / "r")


def test_future_format_version(work, tmp_path):
    shutil.copy(work / "toy.h5", tmp_path / "f.h5")
    with h5py.File(tmp_path / "f.h5", "r+") as h5:
        h5.attrs["format_version"] = 4
    refused("cftrain", ["run", tmp_path / "f.h5", "--out", tmp_path / "r"], "format_version 4 is not supported",
            out=tmp_path / "r")


# ---------------------------------------------------------------- cfbuild outputs and inputs at the edges

def test_existing_store_is_refused_before_reading_inputs(tmp_path):
    (tmp_path / "s.h5").write_bytes(b"mine")
    # the CAD folder does not exist as a release: the output check must come first
    (tmp_path / "cad").mkdir()
    refused("cfbuild", ["imdb", "--cad-dir", tmp_path / "cad", "--out", tmp_path / "s.h5"],
            f"--out {tmp_path / 's.h5'}: already exists (use --force", out=tmp_path / "s.h5")


def test_output_folder_missing(tmp_path):
    refused("cfbuild", ["toy", "--out", tmp_path / "no" / "s.h5"], "output folder", "does not exist")


def test_output_is_a_folder(tmp_path):
    (tmp_path / "s.h5").mkdir()
    refused("cfbuild", ["toy", "--out", tmp_path / "s.h5", "--force"], "'--out'", "is a directory",
            out=tmp_path / "s.h5")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_folder_read_only(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    refused("cfbuild", ["toy", "--out", tmp_path / "ro" / "s.h5"], "is not writable")


@pytest.mark.parametrize("command", ["imdb", "snli"])
def test_cad_dir_at_the_wrong_level(tmp_path, command):
    (tmp_path / "data" / "cad").mkdir(parents=True)
    refused("cfbuild", [command, "--cad-dir", tmp_path / "data", "--out", tmp_path / "s.h5"],
            f"--cad-dir {tmp_path / 'data'}: no {command} training files; expected", out=tmp_path / "s.h5")


def _table(tmp_path, text: str, *extra) -> list:
    (tmp_path / "t.csv").write_text(text)
    return ["table", "--file", tmp_path / "t.csv", "--text-col", "t", "--label-col", "y", "--pair-col", "g",
            "--out", tmp_path / "s.h5", *extra]


TABLE_CASES = {
    "empty label": ("g,t,y\n1,good,1\n1,bad,\n", "t.csv: line 3: empty label in column 'y'"),
    "unclosed quote": ('g,t,y\n1,"good,1\n1,bad,0\n', "t.csv: line 2: unexpected end of data"),
    "field count": ("g,t,y\n1,good,1,x\n1,bad,0\n", "t.csv: line 2: 4 fields, the header has 3"),
    "same label in a group": ("g,t,y\n1,good,1\n1,bad,1\n2,ok,0\n2,no,1\n",
                              "t.csv:2 and t.csv:3 (g 1): original and edit have the same label '1'"),
    "missing column": ("g,text,y\n1,good,1\n1,bad,0\n", "t.csv: missing column(s) 't'"),
}


@pytest.mark.parametrize("case", sorted(TABLE_CASES))
def test_table_bad_rows(tmp_path, case):
    text, fragment = TABLE_CASES[case]
    refused("cfbuild", _table(tmp_path, text), fragment, out=tmp_path / "s.h5")


def test_table_empty_texts_are_reported_not_refused(tmp_path):
    result = CliRunner().invoke(cfbuild_main, [str(a) for a in _table(tmp_path, "g,t,y\n1,,1\n1,bad,0\n")])
    assert result.exit_code == 0, result.stderr
    assert "empty texts 1" in result.stdout and "rows with an empty text (kept): t.csv:2" in result.stdout
