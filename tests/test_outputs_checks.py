"""Outputs you can trust, rules 7 to 10: what once passed the checks and crashed later is refused
up front, damaged stores are named, export/import round trips keep every row, long work shows signs
of life; and `cftrain collect` renders any view from run folders."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

from cli.cfbuild import main as cfbuild_main
from cftrain.registry import readers
from tests.helpers import CAD_DIR as CAD, CAD_MISSING, QUICK, ok, refused, run_cli


# ---------------------------------------------------------------- rule 8: damaged stores are named

def _damaged(work, tmp_path, how: str) -> Path:
    path = tmp_path / "d.h5"
    shutil.copy(work / "text.h5", path)
    if how == "vocab chunk":
        from tests.helpers import flip_first_chunk_byte
        flip_first_chunk_byte(path, "vocab")
        return path
    with h5py.File(path, "r+") as h5:
        if how == "class_names object":
            h5.attrs["class_names"] = json.dumps({"neg": 0})
        elif how == "format_version word":
            h5.attrs["format_version"] = "one"
        elif how == "label_kind unknown":
            h5.attrs["label_kind"] = "fuzzy"
        elif how == "pair kinds missing":
            del h5["train/pairs/kind"]
        elif how == "build not JSON":
            h5.attrs["build"] = "{half"
    return path


DAMAGE = {"vocab chunk": "dataset /vocab cannot be read back",
          "class_names object": "root attribute 'class_names' must be a JSON list of class names, found dict",
          "format_version word": "root attribute 'format_version' must be an integer, found 'one'",
          "label_kind unknown": "root attribute 'label_kind' must be one of binary, multiclass",
          "pair kinds missing": "dataset /train/pairs/kind is missing",
          "build not JSON": "root attribute 'build' is not valid JSON"}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damage_is_named_by_verify_inspect_run_and_the_api(work, tmp_path, how):
    import cfpairs
    from cfpairs.errors import StoreError
    path = _damaged(work, tmp_path, how)
    result = CliRunner().invoke(cfbuild_main, ["verify", str(path)])
    assert result.exit_code == 1 and DAMAGE[how] in result.stderr and "Traceback" not in result.stderr
    refused("cfbuild", ["inspect", path], DAMAGE[how])
    refused("cftrain", ["run", path, "--out", tmp_path / "r"], DAMAGE[how], out=tmp_path / "r")
    refused("cftrain", ["eval", work / "text-run", path], DAMAGE[how])
    with pytest.raises(StoreError, match=re.escape(DAMAGE[how])):
        with cfpairs.open_store(path) as store:
            store["train"].examples  # noqa: B018  (a lazy read that must fail by name)


def test_a_closed_store_says_so(work):
    import cfpairs
    from cfpairs.errors import StoreError
    store = cfpairs.open_store(work / "toy.h5")
    store.close()
    with pytest.raises(StoreError, match="the store is closed"):
        store["train"]
    with pytest.raises(StoreError, match="the store is closed"):
        store.splits


# ---------------------------------------------------------------- rule 9: round trips on real data, CSV

def test_csv_cells_may_hold_commas_quotes_and_line_breaks(tmp_path):
    from cfpairs.store import Store
    text = 'g,t,y\n1,"good, ""great""\nfilm",1\n1,bad film,0\n2,"fine\r\nstory",1\n2,poor story,0\n'
    (tmp_path / "t.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # a spreadsheet's byte-order mark too
    ok("cfbuild", ["table", "--file", tmp_path / "t.csv", "--text-col", "t", "--label-col", "y", "--pair-col", "g",
                   "--out", tmp_path / "s.h5"])
    with Store(tmp_path / "s.h5") as store:
        train = store.split("train")
        assert train.read("text").tolist() == ['good, "great"\nfilm', "bad film", "fine\r\nstory", "poor story"]
        assert train.read("id").tolist() == ["t.csv:2", "t.csv:4", "t.csv:5", "t.csv:7"]  # the lines rows start on


def test_line_numbers_after_a_cell_with_line_breaks(tmp_path):
    (tmp_path / "t.csv").write_text('g,t,y\n1,"two\nlines",1\n1,bad,0\n2,x,1,9\n')
    refused("cfbuild", ["table", "--file", tmp_path / "t.csv", "--text-col", "t", "--label-col", "y", "--pair-col",
                        "g", "--out", tmp_path / "s.h5"], "t.csv: line 5: 4 fields, the header has 3",
            out=tmp_path / "s.h5")


@pytest.mark.e2e
@pytest.mark.skipif(CAD_MISSING is not None, reason=CAD_MISSING or "")
@pytest.mark.parametrize("task", ["imdb", "snli"])
def test_export_then_import_keeps_every_row_and_pair_of_the_cad_stores(tmp_path, task):
    import numpy as np

    import cfpairs
    ok("cfbuild", [task, "--cad-dir", CAD, "--out", tmp_path / "a.h5"])
    ok("cfbuild", ["export", tmp_path / "a.h5", "--to", "parquet", tmp_path / "pq"])
    ok("cfbuild", ["import", tmp_path / "pq", "--out", tmp_path / "b.h5"])
    with cfpairs.open_store(tmp_path / "a.h5") as a, cfpairs.open_store(tmp_path / "b.h5") as b:
        assert a.splits == b.splits and a.vocab == b.vocab and a.class_names == b.class_names
        for split in a.splits:
            x, y = a[split], b[split]
            for column in ("id", "label", "is_counterfactual", *[c for c in x.examples if c.endswith(("text",
                                                                                                     "tokens", "length"))]):
                assert np.array_equal(x.examples[column], y.examples[column]), (split, column)
            assert np.array_equal(x.pairs, y.pairs) and np.array_equal(x.pair_kinds, y.pair_kinds)
            unpaired_edits = x.examples["is_counterfactual"].sum() - len(np.unique(x.pairs[:, 1]))
            assert unpaired_edits > 0 or split != "train"  # the case that failed: edits outside any pair


# ---------------------------------------------------------------- rule 10: signs of life

def test_export_and_planning_show_progress_in_a_log(work, tmp_path, monkeypatch):
    import cfpairs.progress
    monkeypatch.setattr(cfpairs.progress, "QUIET_SECONDS", 0.0)
    result = ok("cfbuild", ["export", work / "toy.h5", "--to", "parquet", tmp_path / "pq"])
    assert "export toy.h5: 4/4 splits" in result.stderr
    result = ok("cftrain", ["sweep", work / "toy.h5", "--out", tmp_path / "sw", "--trials", "2", "--seeds", "0",
                            "--modes", "augmented", "--jobs", "1", *QUICK])
    assert "toy sweep: planning: 2/2 trials" in result.stderr


@pytest.mark.e2e
def test_a_parallel_table_reports_each_run_as_it_finishes(work, tmp_path):
    result = run_cli("cli.cftrain", "table", str(work / "toy.h5"), "--out", str(tmp_path / "t"), "--jobs", "2",
                     "--modes", "chance,augmented,gs", *QUICK)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("toy table (2 processes): ")]
    assert [line.split()[4] for line in lines] == ["1/3", "2/3", "3/3"]
    assert {re.search(r"run=(\S+)", line).group(1) for line in lines} == {"chance", "augmented", "gs"}


# ---------------------------------------------------------------- rule 7: what passed the checks and crashed later

UPFRONT = {
    "negative seed": (["run", "{toy}", "--out", "r", "--seed", "-1"], "'--seed': -1 is not in the range 0<=x<=4294967295"),
    "seed past 2^32": (["run", "{toy}", "--out", "r", "--seed", "4294967296"], "is not in the range 0<=x<=4294967295"),
    "a seed twice": (["table", "{toy}", "--out", "r", "--seeds", "0,0"], "Invalid value for --seeds: 0,0: 0 given twice"),
    "seeds past 2^32": (["table", "{toy}", "--out", "r", "--seeds", "0,4294967296"],
                        "4294967296: seeds are integers in 0..4294967295"),
    "huge lr": (["run", "{toy}", "--out", "r", "--lr", "1e300"], "'--lr': 1e+300 must be <= 1000.0"),
    "huge embedding scale": (["run", "{text}", "--out", "r", "--embed-scale", "1e300"], "'--embed-scale': 1e+300 must"),
    "ensemble past its range": (["run", "{toy}", "--out", "r", "--ensemble", "1000000000"], "'--ensemble'"),
    "models past the memory": (["run", "{toy}", "--out", "r", "--hidden", "1000000,1000000", "--epochs", "1"],
                               "--hidden 1000000,1000000: model mlp would need about 16.0 TB of memory to train"),
    "an ensemble past the memory": (["run", "{toy}", "--out", "r", "--hidden", "1000000", "--ensemble", "1000"],
                                    "--ensemble 1000, --hidden 1000000: model mlp would need about"),
    "gs weight to augmentation": (["run", "{toy}", "--out", "r", "--mode", "augmented", "--gs-weight", "3"],
                                  "--gs-weight 3.0: the mode augmented does not read it (modes that do: "
                                  f"{', '.join(readers('gs_weight')['mode'])})"),
    "random sign to gs": (["run", "{toy}", "--out", "r", "--random-sign", "pair"],
                          "--random-sign pair: the mode gs does not read it (modes that do: "
                          f"{', '.join(readers('random_sign')['mode'])})"),
    "embedding init to a model without words": (["run", "{toy}", "--out", "r", "--embed-init", "uniform"],
                                                "--embed-init uniform: the model mlp does not read it"),
    "max tokens on a vector store": (["run", "{toy}", "--out", "r", "--max-tokens", "5"],
                                     "--max-tokens 5: the store's inputs are vectors, with no tokens to cut"),
    "a table option no mode reads": (["table", "{toy}", "--out", "r", "--modes", "augmented,original", "--gs-weight",
                                      "3"], "--gs-weight 3.0: none of the modes original, augmented reads it"),
    "a fraction twice": (["curve", "{toy}", "--out", "r", "--fractions", "1/2,0.5"],
                         "--fractions 1/2,0.5: 1/2 and 0.5 are the same fraction"),
    "fractions one folder apart": (["curve", "{toy}", "--out", "r", "--fractions", "0.5,0.50001"],
                                   "0.5 and 0.50001 are equal to 4 decimals"),
}


@pytest.mark.parametrize("case", sorted(UPFRONT))
def test_checks_made_before_any_work(work, tmp_path, case):
    args, fragment = UPFRONT[case]
    args = [a.format(toy=work / "toy.h5", text=work / "text.h5") for a in args]
    args = [str(tmp_path / a) if a == "r" else a for a in args]
    refused("cftrain", args, fragment, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_a_toy_store_past_the_memory_is_refused(tmp_path):
    refused("cfbuild", ["toy", "--out", tmp_path / "t.h5", "--dim", "100000000000"],
            "--n 2000 --dim 100000000000: the training split alone would need about 4,800,000.0 GB",
            out=tmp_path / "t.h5")


SPACES = {
    "an integer option from a float": ('{"epochs": [1.5]}', "epochs: 1.5: must be an integer"),
    "an integer option from a uniform range": ('{"batch_size": {"uniform": [16, 64]}}',
                                              "batch_size: a uniform range draws floats; --batch-size takes a list"),
    "null": ('{"lr": [null]}', "lr: null is not a value (leave the option out)"),
    "a choice that is not one": ('{"optimizer": ["sgd"]}', "optimizer: 'sgd': must be one of adadelta, adam, adamax"),
    "widths with a zero": ('{"hidden": [[64, 0]]}', "hidden: [64, 0]: must be comma-separated layer widths"),
    "a bound outside the range": ('{"lr": {"uniform": [0, 5]}}', "lr: bound 0: must be a finite number > 0"),
    "an option no mode reads": ('{"random_sign": ["pair"]}', "random_sign: none of the modes gs reads it"),
    "an option that changes nothing": ('{"threads": [1, 2]}', "'threads' is not an option a sweep can vary"),
}


@pytest.mark.parametrize("case", sorted(SPACES))
def test_sweep_spaces_are_typed_by_the_options(work, tmp_path, case):
    text, fragment = SPACES[case]
    (tmp_path / "space.json").write_text(text)
    refused("cftrain", ["sweep", work / "toy.h5", "--out", tmp_path / "s", "--space", tmp_path / "space.json",
                        "--trials", "3"], fragment, out=tmp_path / "s")


def test_a_toml_space_with_an_integer_range_is_drawn_as_integers(work, tmp_path):
    (tmp_path / "space.toml").write_text('epochs = {int = [1, 2]}\nlr = [0.5, 1]\n')
    ok("cftrain", ["sweep", work / "toy.h5", "--out", tmp_path / "s", "--space", tmp_path / "space.toml",
                   "--trials", "3", "--seeds", "0", "--modes", "augmented", "--jobs", "1"])
    lines = [json.loads(line) for line in (tmp_path / "s" / "results.jsonl").read_text().splitlines()]
    assert all(isinstance(line["options"].get("epochs", 1), int) for line in lines)
    assert all(isinstance(line["options"].get("lr", 1.0), float) for line in lines)


# ---------------------------------------------------------------- collect: any view from run directories

@pytest.mark.parametrize("kind", ["table", "sweep", "curve"])
def test_collect_renders_each_folder_as_its_command_did(work, tmp_path, kind):
    args = {"table": ["--modes", "chance,augmented", "--seeds", "0,1"],
            "sweep": ["--modes", "augmented", "--trials", "2", "--seeds", "0,1"],
            "curve": ["--modes", "augmented", "--fractions", "1/2,1", "--seeds", "0,1"]}[kind]
    ok("cftrain", [kind, work / "toy.h5", "--out", tmp_path / "c", *args, *QUICK, "--jobs", "1"])
    result = ok("cftrain", ["collect", tmp_path / "c", "--out", tmp_path / "again"])
    name = {"table": "table", "sweep": "summary", "curve": "curve"}[kind]
    assert (tmp_path / "again" / f"{name}.md").read_text() == (tmp_path / "c" / f"{name}.md").read_text()
    assert json.loads((tmp_path / "again" / f"{name}.json").read_text()) == \
        json.loads((tmp_path / "c" / f"{name}.json").read_text())
    assert result.stdout.strip() == (tmp_path / "c" / f"{name}.md").read_text().strip()


def test_collect_combines_tables_of_separate_invocations(work, tmp_path):
    for seed in (0, 1, 2):
        ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "all" / f"s{seed}", "--modes", "augmented",
                       "--seeds", str(seed), *QUICK, "--jobs", "1"])
    ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "one", "--modes", "augmented", "--seeds", "0,1,2",
                   *QUICK, "--jobs", "1"])
    combined = json.loads(ok("cftrain", ["collect", tmp_path / "all", "--view", "table", "--out",
                                         tmp_path / "view"]).stdout and (tmp_path / "view" / "table.json").read_text())
    together = json.loads((tmp_path / "one" / "table.json").read_text())
    assert combined["rows"][0]["splits"] == together["rows"][0]["splits"]  # the same runs, mean over 3 seeds
    assert [r["seed"] for r in combined["rows"][0]["runs"]] == [0, 1, 2]


def test_collect_refuses_runs_of_two_tasks(work, tmp_path):
    ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "runs" / "a", "--modes", "chance"])
    ok("cftrain", ["table", work / "text.h5", "--out", tmp_path / "runs" / "b", "--modes", "chance"])
    refused("cftrain", ["collect", tmp_path / "runs", "--view", "table"], "runs of 2 tasks or metrics",
            "table (accuracy), toy (accuracy)")


def test_collect_never_merges_runs_of_two_stores_and_names_them(work, tmp_path):
    from cfpairs.store import Store
    from cfbuild.builders.toy import build_toy
    build_toy(tmp_path / "other.h5", n=200, seed=1)  # the same task, other content
    ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "runs" / "a", "--modes", "chance"])
    ok("cftrain", ["table", tmp_path / "other.h5", "--out", tmp_path / "runs" / "b", "--modes", "chance"])
    digests = [Store(p).digest for p in (work / "toy.h5", tmp_path / "other.h5")]
    for view in ("sweep", "curve"):  # runs ranked or plotted against each other: refused
        refused("cftrain", ["collect", tmp_path / "runs", "--view", view], "runs of 2 different stores")
    text = ok("cftrain", ["collect", tmp_path / "runs", "--view", "table"]).stdout
    rows = [line for line in text.splitlines() if line.startswith("| Chance")]
    assert len(rows) == 2 and "Runs of 2 different stores" in text
    assert {row.split("[store ")[1][:8] for row in rows} == {d[:8] for d in digests}
