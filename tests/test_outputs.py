"""Outputs you can trust (`cfpairs.outputs`), rules 1 and 2: one package owns every output, and
--force replaces only what cfpairs wrote; inputs, the working folder and special files are never
outputs. Each case hashes what existed before and checks it is byte-identical after."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time

import h5py
import pytest

from cfpairs.outputs import owner
from tests.helpers import QUICK, REPO, ok, refused, snapshot


# ---------------------------------------------------------------- rule 1: one module owns every output

def test_no_module_outside_the_outputs_package_renames_or_removes_files():
    calls = re.compile(r"os\.(replace|rename|link|unlink)\(|shutil\.rmtree\(|mk[sd]temp\(|\.unlink\(")
    offenders = [f"{path.relative_to(REPO)}:{n}" for package in ("cfpairs", "cfbuild", "cftrain", "cli")
                 for path in sorted((REPO / package).rglob("*.py")) if path.relative_to(REPO).parts[:2] != ("cfpairs", "outputs")
                 for n, line in enumerate(path.read_text().splitlines(), 1) if calls.search(line)]
    assert offenders == []


# ---------------------------------------------------------------- rule 2: ownership

@pytest.mark.parametrize("command", ["run", "table", "sweep", "curve"])
def test_force_refuses_a_folder_cftrain_did_not_write(here, command):
    (here / "mine").mkdir()
    (here / "mine" / "data.csv").write_text("a,b\n1,2\n")
    extra = {"table": ["--modes", "chance"], "sweep": ["--trials", "1", "--seeds", "0"],
             "curve": ["--fractions", "1", "--seeds", "0", "--modes", "augmented"]}.get(command, [])
    refused("cftrain", [command, "toy.h5", "--out", "mine", "--force", *QUICK, *extra],
            "--out mine: is not a folder written by cfpairs (no .cfpairs marker; it holds data.csv)",
            "--force replaces only what cfpairs wrote", out=here / "mine")


def test_force_refuses_an_export_folder_of_someone_else(here):
    (here / "tables").mkdir()
    (here / "tables" / "train.parquet").write_bytes(b"PAR1")
    refused("cfbuild", ["export", "toy.h5", "--to", "parquet", "tables", "--force"],
            "is not a folder written by cfpairs", out=here / "tables")


def test_force_refuses_a_table_whose_run_folder_holds_a_user_file(here):
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance"])
    (here / "t" / "chance" / "notes.md").write_text("mine")
    refused("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance", "--force"],
            "holds files cfpairs did not write (chance/notes.md)", out=here / "t")


def test_force_refuses_an_hdf5_file_that_is_not_a_store(here):
    with h5py.File(here / "other.h5", "w") as h5:
        h5["data"] = [1, 2, 3]
    refused("cfbuild", ["toy", "--out", "other.h5", "--force", "--n", "20"],
            "--out other.h5: is not a store written by cfpairs", out=here / "other.h5")


def test_force_refuses_a_plain_file_under_a_store_name(here):
    (here / "out.h5").write_text("not hdf5 at all")
    refused("cfbuild", ["toy", "--out", "out.h5", "--force", "--n", "20"], "is not a store written by cfpairs",
            out=here / "out.h5")


@pytest.mark.parametrize("command", ["eval", "report"])
def test_force_refuses_a_page_cftrain_did_not_write(here, command):
    page = here / ("page.json" if command == "eval" else "page.md")
    page.write_text('{"mine": 1}' if command == "eval" else "# my notes\n")
    args = ["eval", "run", "toy.h5", "--out", page.name] if command == "eval" else ["report", "run", "--out", page.name]
    refused("cftrain", [*args, "--force"], f"--out {page.name}: is not a", "page written by cfpairs", out=page)


def test_force_replaces_what_cfpairs_wrote(here):
    ok("cfbuild", ["toy", "--out", "s.h5", "--n", "20"])
    ok("cfbuild", ["toy", "--out", "s.h5", "--n", "30", "--force"])
    assert owner(here / "s.h5") == "store"
    for command in (["eval", "run", "toy.h5", "--out", "e.json"], ["report", "run", "--out", "r.md"]):
        ok("cftrain", command)
        ok("cftrain", [*command, "--force"])
    assert json.loads((here / "e.json").read_text())["generator"].startswith("cfpairs ")
    assert (here / "r.md").read_text().startswith("<!-- generator: cfpairs")
    ok("cfbuild", ["export", "toy.h5", "--to", "parquet", "pq"])
    ok("cfbuild", ["export", "toy.h5", "--to", "hf", "pq", "--force"])
    assert owner(here / "pq") == "export" and (here / "pq" / "dataset_dict.json").is_file()


INPUT_CASES = {
    "run into the folder holding its store": (
        "cftrain", ["run", "data/x.h5", "--out", "data", "--force", *QUICK], "contains an input of this command"),
    "export into the folder holding its store": (
        "cfbuild", ["export", "data/x.h5", "--to", "parquet", "data", "--force"], "contains an input"),
    "eval over its store": ("cftrain", ["eval", "run", "toy.h5", "--out", "toy.h5", "--force"], "is an input"),
    "report over a run's config": ("cftrain", ["report", "run", "--out", "run/config.json", "--force"],
                                   "lies inside the input folder run"),
    "import over its own table": ("cfbuild", ["import", "tables", "--out", "tables/train.jsonl", "--force"],
                                  "lies inside the input folder tables"),
    "transfer over its vocabulary": ("cfbuild", ["transfer", "--preset", "yelp", "--source", "yelp.csv",
                                                 "--vocab-from", "text.h5", "--out", "text.h5", "--force"],
                                     "is an input of this command"),
    "table over the working folder": ("cftrain", ["table", "toy.h5", "--out", ".", "--force"], "is the working folder"),
    "sweep over the working folder": ("cftrain", ["sweep", "toy.h5", "--out", ".", "--force"], "is the working folder"),
    "curve over a parent folder": ("cftrain", ["curve", "toy.h5", "--out", "..", "--force"], "one of its parents"),
}


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_inputs_and_the_working_folder_are_never_outputs(here, case):
    program, args, fragment = INPUT_CASES[case]
    (here / "data").mkdir()
    shutil.copy(here / "toy.h5", here / "data" / "x.h5")
    (here / "tables").mkdir()
    (here / "tables" / "train.jsonl").write_text('{"text": "a b", "label": 0, "pair_id": -1, '
                                                 '"is_counterfactual": false}\n')
    (here / "yelp.csv").write_text("text,label\ngood,1\nbad,0\n")
    before = snapshot(here)
    refused(program, args, fragment)
    assert snapshot(here) == before


def test_the_home_and_root_folders_are_never_outputs(here, monkeypatch):
    monkeypatch.setenv("HOME", str(here / "home"))
    (here / "home").mkdir()
    (here / "home" / "keep.txt").write_text("mine")
    refused("cftrain", ["table", "toy.h5", "--out", here / "home", "--force"], "is the home folder",
            out=here / "home")
    refused("cftrain", ["table", "toy.h5", "--out", "/", "--force"], "--out /: is the working folder or one of its "
                                                                     "parents")


def test_a_device_a_fifo_a_socket_and_a_link_are_never_replaced(here):
    refused("cftrain", ["run", "toy.h5", "--out", "/dev/null", "--force"], "--out /dev/null: is a character device")
    os.mkfifo(here / "pipe.h5")
    refused("cfbuild", ["toy", "--out", "pipe.h5", "--force"], "--out pipe.h5: is a FIFO")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(here / "sock.h5"))
    refused("cfbuild", ["toy", "--out", "sock.h5", "--force"], "--out sock.h5: is a socket")
    (here / "link.h5").symlink_to(here / "toy.h5")
    before = snapshot(here / "toy.h5")
    refused("cfbuild", ["toy", "--out", "link.h5", "--force"], "--out link.h5: is a symbolic link")
    assert snapshot(here / "toy.h5") == before and (here / "link.h5").is_symlink()
    server.close()


@pytest.mark.parametrize("program,args", [("cfbuild", ["inspect", "{fifo}"]), ("cfbuild", ["verify", "{fifo}"]),
                                          ("cftrain", ["run", "{fifo}", "--out", "r"]),
                                          ("cfbuild", ["table", "--file", "{fifo}", "--text-col", "t", "--label-col",
                                                       "y", "--pair-col", "g", "--out", "s.h5"])])
@pytest.mark.e2e
def test_a_fifo_given_as_an_input_is_refused_at_once(here, program, args):
    os.mkfifo(here / "pipe.h5")
    started = time.monotonic()
    refused(program, [a.format(fifo="pipe.h5") for a in args], "pipe.h5: is a FIFO, not a regular file")
    assert time.monotonic() - started < 10  # h5py would block on it for ever


def test_the_python_api_refuses_a_fifo_too(here):
    import cfpairs
    from cfpairs.errors import StoreError
    os.mkfifo(here / "pipe.h5")
    with pytest.raises(StoreError, match="is a FIFO, not a store file"):
        cfpairs.open_store(here / "pipe.h5")


def test_a_long_file_name_gets_the_reason_first(here):
    name = "s" * 300 + ".h5"
    error = refused("cfbuild", ["toy", "--out", name, "--n", "20"], "file name too long (303 bytes")
    assert error.index("too long") < error.index("--out")
