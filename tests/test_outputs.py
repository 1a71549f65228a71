"""Outputs you can trust (`cfpairs.outputs`): --force replaces only what cfpairs wrote, inputs and
the working folder are never touched, folders being written are locked, campaigns resume by identity,
workers die with their parent, full disks are clean errors. Each case hashes what existed before and
checks it is byte-identical after."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

from cfpairs.outputs import OutputLock, owner
from cli.cfbuild import main as cfbuild_main
from cli.cftrain import main as cftrain_main
from tests.helpers import CAD_DIR as CAD, CAD_MISSING, REPO, refused, run_cli, snapshot

QUICK = ["--epochs", "1"]


@pytest.fixture
def here(work, tmp_path, monkeypatch):
    """A working folder holding a user's files: a store, a text store, a run, and a thesis."""
    shutil.copy(work / "toy.h5", tmp_path / "toy.h5")
    shutil.copy(work / "text.h5", tmp_path / "text.h5")
    shutil.copytree(work / "toy-run", tmp_path / "run")
    (tmp_path / "thesis.tex").write_text("\\chapter{mine}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ok(program: str, args: list):
    result = CliRunner().invoke({"cfbuild": cfbuild_main, "cftrain": cftrain_main}[program], [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return result


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


# ---------------------------------------------------------------- rule 3: locks

def test_a_folder_being_written_is_locked(here):
    lock = OutputLock(here / "t").acquire()
    try:
        refused("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance"],
                f"--out t: another process (pid {os.getpid()}) is writing it", out=here / "t")
        refused("cfbuild", ["toy", "--out", "t", "--n", "20"], "another process", out=here / "t")
    finally:
        lock.release()
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance"])
    assert not (here / ".t.lock").exists()


@pytest.mark.e2e
def test_a_second_sweep_on_one_folder_is_refused_and_a_killed_one_frees_it(work, tmp_path):
    args = ["sweep", str(work / "toy.h5"), "--out", str(tmp_path / "sw"), "--modes", "augmented", "--trials", "2",
            "--seeds", "0", "--jobs", "1"]
    first = subprocess.Popen([sys.executable, "-m", "cli.cftrain", "--quiet", *args, "--epochs", "100000",
                              "--patience", "100000"], cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / ".sw.lock").exists():
        time.sleep(0.05)
    second = run_cli("cli.cftrain", *args, "--epochs", "1")
    assert second.returncode == 2 and f"another process (pid {first.pid}) is writing it" in second.stderr
    first.send_signal(signal.SIGKILL)
    first.wait()
    third = run_cli("cli.cftrain", "--quiet", *args, "--epochs", "1")
    assert third.returncode == 0, third.stderr
    assert len((tmp_path / "sw" / "results.jsonl").read_text().splitlines()) == 2


# ---------------------------------------------------------------- rule 4: resume by identity

def _stamps(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("metrics.json")}


def test_a_table_resumes_whatever_the_spelling_jobs_threads_or_device(here, tmp_path_factory):
    args = ["--modes", "chance,augmented", "--seeds", "0,1", *QUICK]
    ok("cftrain", ["table", "toy.h5", "--out", "t", *args, "--jobs", "1"])
    stamps = _stamps(here / "t")
    (here / "links").mkdir()
    (here / "links" / "same.h5").symlink_to(here / "toy.h5")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    shutil.copy(here / "toy.h5", elsewhere / "copy.h5")  # another path, the same content digest
    for store, extra in ((here / "toy.h5", ["--jobs", "2"]), ("links/same.h5", ["--threads", "2"]),
                         (elsewhere / "copy.h5", ["--device", "cpu"])):
        ok("cftrain", ["table", store, "--out", here / "t", *args, *extra])
    assert _stamps(here / "t") == stamps  # nothing trained again


def test_a_table_with_other_options_is_refused_until_force(here):
    args = ["--modes", "augmented", *QUICK]
    ok("cftrain", ["table", "toy.h5", "--out", "t", *args])
    refused("cftrain", ["table", "toy.h5", "--out", "t", *args, "--lr", "0.5"],
            "--out t" if False else "t: holds a table made with other settings (--lr was 1.0 for augmented, now 0.5)",
            "--force to start again", out=here / "t")
    ok("cftrain", ["table", "toy.h5", "--out", "t", *args, "--lr", "0.5", "--force"])
    assert json.loads((here / "t" / "augmented" / "config.json").read_text())["lr"] == 0.5


def test_a_table_of_another_store_content_is_refused(here):
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "chance"])
    ok("cfbuild", ["toy", "--out", "other.h5", "--n", "200", "--seed", "1"])
    refused("cftrain", ["table", "other.h5", "--out", "t", "--modes", "chance"],
            "made with other settings (the store's content was", out=here / "t")


def test_more_seeds_add_only_their_runs_and_collect_renders_the_union(here):
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "augmented", "--seeds", "0", *QUICK])
    stamps = _stamps(here / "t")
    ok("cftrain", ["table", "toy.h5", "--out", "t", "--modes", "augmented", "--seeds", "0,1", *QUICK])
    assert {k: v for k, v in _stamps(here / "t").items() if k in stamps} == stamps and len(_stamps(here / "t")) == 2
    table = json.loads((here / "t" / "table.json").read_text())
    assert [r["seed"] for r in table["rows"][0]["runs"]] == [0, 1]


# ---------------------------------------------------------------- rule 5: workers die with their parent

def _children(pid: int) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
@pytest.mark.parametrize("command", ["table", "curve"])
def test_kill_9_of_a_jobs_2_parent_takes_its_workers_along(work, tmp_path, command):
    extra = ["--modes", "augmented,gs"] if command == "table" else ["--modes", "augmented,gs", "--fractions", "1",
                                                                      "--seeds", "0"]
    parent = subprocess.Popen([sys.executable, "-m", "cli.cftrain", command, str(work / "toy.h5"), "--out",
                               str(tmp_path / "c"), "--jobs", "2", "--epochs", "100000", "--patience", "100000",
                               *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = [p for p in _children(parent.pid) if "_worker_loop" in _cmdline(p) or "multiprocessing" in _cmdline(p)]
        time.sleep(0.1)
    assert len(workers) >= 2, _children(parent.pid)
    time.sleep(1.0)  # training has started in both
    parent.kill()
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "a worker outlived its parent by 5 s"
    output = parent.stdout.read()
    assert "Traceback" not in output, output


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# ---------------------------------------------------------------- rule 6: full disks and file-size limits

def _limited(kilobytes: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (kilobytes * 1024, resource.RLIM_INFINITY))
    return limit


@pytest.mark.parametrize("args,kilobytes", [(["cfbuild", "toy", "--n", "100000"], 512),
                                            (["cftrain", "run", "{toy}", "--epochs", "1"], 8),
                                            (["cfbuild", "export", "{toy}", "--to", "parquet"], 512)])
@pytest.mark.e2e
def test_a_file_size_limit_is_one_line_and_leaves_nothing(work, tmp_path, args, kilobytes):
    big = tmp_path / "big.h5"
    run_cli("cfbuild", "toy", "--out", str(big), "--n", "100000")  # written before the limit
    out = tmp_path / "out"
    command = [a.format(toy=big) for a in args]
    command += [str(out)] if command[1] == "export" else ["--out", str(out)]
    before = snapshot(tmp_path)
    result = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True,
                            preexec_fn=_limited(kilobytes))
    assert result.returncode == 1, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1], result.stderr
    assert "cannot be written: File too large" in errors[0] and str(out) in errors[0]
    assert snapshot(tmp_path) == before and not list(tmp_path.glob(".*"))


@pytest.mark.e2e
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (disk / "keep.txt").write_text("mine")
        result = run_cli("cfbuild", "toy", "--out", str(disk / "big.h5"), "--n", "100000")
        assert result.returncode == 1 and "No space left on device" in result.stderr, result.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["keep.txt"]
    finally:
        subprocess.run(["umount", str(disk)])


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
                                  "--gs-weight 3.0: the mode augmented does not read it (modes that do: gs, gs-random)"),
    "random sign to gs": (["run", "{toy}", "--out", "r", "--random-sign", "pair"],
                          "--random-sign pair: the mode gs does not read it (modes that do: gs-random)"),
    "embedding init to a model without words": (["run", "{toy}", "--out", "r", "--embed-init", "uniform"],
                                                "--embed-init uniform: the model mlp does not read it"),
    "max tokens on a vector store": (["run", "{toy}", "--out", "r", "--max-tokens", "5"],
                                     "--max-tokens 5: the model mlp does not read it"),
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


def test_collect_refuses_runs_of_two_stores(work, tmp_path):
    ok("cftrain", ["table", work / "toy.h5", "--out", tmp_path / "runs" / "a", "--modes", "chance"])
    ok("cftrain", ["table", work / "text.h5", "--out", tmp_path / "runs" / "b", "--modes", "chance"])
    refused("cftrain", ["collect", tmp_path / "runs", "--view", "table"], "runs of 2 different stores")
