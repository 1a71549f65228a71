"""What a run or an export says about its store is what it checked; what collect counts is what
it checked: run folders from elsewhere are validated input."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from tests.helpers import ok, refused, snapshot


def tampered_copy(path, folder):
    """The store with every train label flipped; HDF5's checksums are rewritten, the digest is not."""
    shutil.copy(path, folder / "tampered.h5")
    with h5py.File(folder / "tampered.h5", "r+") as h5:
        h5["train/examples/label"][...] = 1 - h5["train/examples/label"][()]
    return folder / "tampered.h5"


@pytest.mark.parametrize("command", [["run", "--mode", "augmented"], ["table", "--modes", "augmented"]])
def test_a_text_or_vector_store_is_verified_as_it_is_loaded(work, tmp_path, command):
    store = tampered_copy(work / "toy.h5", tmp_path)
    refused("cftrain", [command[0], store, "--out", tmp_path / "r", *command[1:], "--epochs", "1"],
            "content_digest mismatch", out=tmp_path / "r")
    refused("cftrain", ["eval", work / "toy-run", store], "content_digest mismatch")


def test_export_checks_the_digest_before_writing(work, tmp_path):
    store = tampered_copy(work / "text.h5", tmp_path)
    refused("cfbuild", ["export", store, "--to", "parquet", tmp_path / "out"], "content_digest mismatch",
            out=tmp_path / "out")


def test_a_run_records_the_digest_it_verified(work):
    config = json.loads((work / "toy-run" / "config.json").read_text())
    metrics = json.loads((work / "toy-run" / "metrics.json").read_text())
    from cfpairs.check import check_store
    computed = check_store(work / "toy.h5", digest=True)
    assert config["store_digest"] == metrics["store_digest"] == computed
    assert config["store_verified"] is True and metrics["store_verified"] is True


def test_region_runs_say_whether_they_verified_and_tables_keep_them_apart(stores, tmp_path):
    quick = ["--modes", "augmented", "--epochs", "1", "--hidden", "4"]
    ok("cftrain", ["table", stores["regions"], "--out", tmp_path / "runs" / "plain", *quick])
    ok("cftrain", ["table", stores["regions"], "--out", tmp_path / "runs" / "checked", *quick, "--verify",
                   "--seed", "1"])  # another seed: the same run twice would be counted once
    verified = {name: json.loads((tmp_path / "runs" / name / "augmented" / "config.json").read_text())["store_verified"]
                for name in ("plain", "checked")}
    assert verified == {"plain": False, "checked": True}
    table = ok("cftrain", ["collect", tmp_path / "runs", "--view", "table"]).stdout
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert len(rows) == 2 and sum("[store not verified]" in row for row in rows) == 1
    assert "Not verified: 1 of 2 runs" in table


def test_one_seed_prints_no_standard_error(work, tmp_path):
    text = ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "t", "--modes", "chance", "--seeds", "0"]).stdout
    row = next(line for line in text.splitlines() if line.startswith("| Chance"))
    assert "±" not in row and "(n=1)" in row
    table = json.loads((tmp_path / "t" / "table.json").read_text())
    assert table["rows"][0]["splits"]["val"]["all"]["stderr"] is None


def test_a_table_without_seeds_says_n1_once_in_its_caption(work, tmp_path):
    text = ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "t", "--modes", "chance"]).stdout
    caption = next(line for line in text.splitlines() if line.startswith("Task "))
    assert "one seed per row (n=1: no standard error)" in caption
    row = next(line for line in text.splitlines() if line.startswith("| Chance"))
    assert "±" not in row and "(n=1)" not in row


def test_three_seeds_print_the_sample_standard_error(work, tmp_path):
    ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "t", "--modes", "chance", "--seeds", "0,1,2"])
    table = json.loads((tmp_path / "t" / "table.json").read_text())
    values = [json.loads((tmp_path / "t" / "chance" / f"seed-{s}" / "metrics.json").read_text())
              ["splits"]["val"]["all"]["accuracy"] for s in range(3)]
    cell = table["rows"][0]["splits"]["val"]["all"]
    assert cell["stderr"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(3), abs=0.006)
    assert snapshot(tmp_path / "t") is not None


# ---------------------------------------------------------------- run folders are validated input


@pytest.fixture(scope="module")
def table(tmp_path_factory, work):
    """A toy table: chance and augmented, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("table")
    ok("cftrain", ["table", work / "toy.h5", "--out", root / "t", "--modes", "chance,augmented", "--seeds", "0,1",
                   "--epochs", "1"])
    return root / "t"


def test_copies_of_a_run_count_once_and_say_so(table, tmp_path):
    from click.testing import CliRunner
    from tests.helpers import cli_main
    shutil.copytree(table, tmp_path / "runs" / "a")
    shutil.copytree(table, tmp_path / "runs" / "b")
    shutil.copytree(table, tmp_path / "runs" / "c")
    result = CliRunner().invoke(cli_main("cftrain"), ["collect", str(tmp_path / "runs"), "--view", "table"])
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "8 run folder(s) repeat(s) another run" in notes[0]
    alone = ok("cftrain", ["collect", table, "--view", "table"]).stdout
    assert result.stdout == alone  # the same table as the one folder: two seeds per row, not six


def test_the_same_options_and_seed_with_other_weights_are_both_counted_and_said(table, tmp_path):
    import torch
    shutil.copytree(table, tmp_path / "runs" / "a")
    shutil.copytree(table / "augmented" / "seed-0", tmp_path / "runs" / "b")
    saved = torch.load(tmp_path / "runs" / "b" / "model.pt", weights_only=True)
    first = next(iter(saved["members"][0]))
    saved["members"][0][first] = saved["members"][0][first] + 1
    torch.save(saved, tmp_path / "runs" / "b" / "model.pt")
    from click.testing import CliRunner
    from tests.helpers import cli_main
    result = CliRunner().invoke(cli_main("cftrain"), ["collect", str(tmp_path / "runs"), "--view", "table"])
    assert result.exit_code == 0, result.stderr
    assert "same options and seed as another run but other weights: both counted" in result.stderr


BAD_FILES = {  # (file, change, the key the one line names)
    "accuracy 1000": ("metrics.json", lambda m: m["splits"]["val"]["all"].update(accuracy=1000),
                      "splits.val.all.accuracy: 1000 is outside [0, 100]"),
    "accuracy -5": ("metrics.json", lambda m: m["splits"]["val"]["all"].update(accuracy=-5),
                    "splits.val.all.accuracy: -5 is outside [0, 100]"),
    "accuracy true": ("metrics.json", lambda m: m["splits"]["val"]["all"].update(accuracy=True),
                      "splits.val.all.accuracy: expected a finite number, found True"),
    "accuracy 'NaN'": ("metrics.json", lambda m: m["splits"]["val"]["all"].update(accuracy="NaN"),
                       "splits.val.all.accuracy: expected a finite number, found 'NaN'"),
    "accuracy []": ("metrics.json", lambda m: m["splits"]["val"]["all"].update(accuracy=[]),
                    "splits.val.all.accuracy: expected a finite number, found []"),
    "no splits": ("metrics.json", lambda m: m.pop("splits"), "splits: is missing"),
    "n negative": ("metrics.json", lambda m: m["splits"]["val"]["all"].update(n=-1), "splits.val.all.n: expected a count"),
    "a group named with a pipe": ("metrics.json", lambda m: m["splits"]["val"].update({"a|b": {"n": 1}}),
                                  "splits.val.a|b: 'a|b' is not a valid name"),
    "mode nonsense": ("metrics.json", lambda m: m.update(mode="nonsense-mode"), "mode: 'nonsense-mode' is not one of"),
    "config a list": ("config.json", lambda c: c.clear(), "mode: is missing"),
    "config mode a path": ("config.json", lambda c: c.update(mode="../../x"), "mode: '../../x' must be one of"),
    "config seed text": ("config.json", lambda c: c.update(seed="0"), "seed: '0' must be an integer"),
    "config digest": ("config.json", lambda c: c.update(store_digest="abc"), "store_digest: 'abc' is not a valid name"),
    "job seed": ("config.json", lambda c: c["job"].update(seed=[0]), "job.seed: expected int, found [0]"),
}


def _break(folder, name):
    file, change, _ = BAD_FILES[name]
    run = folder / "augmented" / "seed-0"
    values = json.loads((run / file).read_text())
    change(values)
    if name == "config a list":
        values = []
    (run / file).write_text(json.dumps(values))
    return run / file


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_run_file_is_refused_naming_file_and_key(table, tmp_path, name):
    shutil.copytree(table, tmp_path / "t")
    path = _break(tmp_path / "t", name)
    fragment = BAD_FILES[name][2] if name != "config a list" else "expected a JSON object, found a list"
    line = refused("cftrain", ["collect", tmp_path / "t", "--view", "table"], str(path), fragment)
    assert "internal error" not in line


def test_resume_eval_and_view_read_through_the_schema(work, table, tmp_path):
    shutil.copytree(table, tmp_path / "t")
    path = _break(tmp_path / "t", "accuracy 1000")
    refused("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "t", "--modes", "chance,augmented",
                        "--seeds", "0,1", "--epochs", "1"], str(path), "is outside [0, 100]")
    config = _break(tmp_path / "t", "config mode a path")
    refused("cftrain", ["eval", config.parent, work / "toy.h5"], str(config), "mode: '../../x'")
    refused("cftrain", ["eval", config.parent, work / "toy.h5", "--predictions", tmp_path / "p.json"], str(config),
            out=tmp_path / "p.json")


def test_a_copy_whose_seed_was_edited_is_no_new_seed(table, tmp_path):
    """Its weights are the original's byte for byte: counted once, whatever config.json says."""
    shutil.copytree(table, tmp_path / "runs" / "a")
    shutil.copytree(table / "augmented" / "seed-0", tmp_path / "runs" / "b")
    for name in ("config.json", "metrics.json"):
        path = tmp_path / "runs" / "b" / name
        values = json.loads(path.read_text())
        values["seed"] = 7
        values.get("job", {})["seed"] = 7
        path.write_text(json.dumps(values))
    from click.testing import CliRunner
    from tests.helpers import cli_main
    result = CliRunner().invoke(cli_main("cftrain"), ["collect", str(tmp_path / "runs"), "--view", "table"])
    assert result.exit_code == 0, result.stderr
    assert "1 run folder(s) repeat(s) another run (the same weights" in result.stderr
    assert "seeds 0, 1," in result.stdout and "7" not in result.stdout.split("\n")[0]


def test_symlinked_run_folders_are_named_not_silently_skipped(table, tmp_path):
    shutil.copytree(table, tmp_path / "runs" / "a")
    (tmp_path / "elsewhere").mkdir()
    shutil.copytree(table / "augmented" / "seed-1", tmp_path / "elsewhere" / "run")
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "elsewhere" / "run")
    from click.testing import CliRunner
    from tests.helpers import cli_main
    result = CliRunner().invoke(cli_main("cftrain"), ["collect", str(tmp_path / "runs"), "--view", "table"])
    assert result.exit_code == 0, result.stderr
    assert "link is a symbolic link: not read" in result.stderr


def test_a_run_file_that_is_not_a_regular_file_is_said_so_not_missing(table, work, tmp_path):
    import os
    run = tmp_path / "run"
    shutil.copytree(table / "augmented" / "seed-0", run)
    (run / "model.pt").unlink()
    os.mkfifo(run / "model.pt")
    refused("cftrain", ["eval", run, work / "toy.h5"], "model.pt: not a regular file")
