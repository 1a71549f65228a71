"""Transfer columns (`--transfer NAME=STORE` on table, sweep and collect) and pair consistency in
run metrics: stores that do not fit are refused up front, columns are the seeds' own evaluations
averaged, a later transfer retrains nothing, collect never writes into the folder it reads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from cfbuild.builders.table import build_table
from cfbuild.builders.toy import build_toy
from cfpairs.errors import UserError
from cli.cftrain import main as cftrain_main
from tests.conftest import write_text_rows
from tests.helpers import refused, snapshot

QUICK = ["--epochs", "1", "--jobs", "1", "--threads", "1"]


def ok(*args) -> str:
    result = CliRunner().invoke(cftrain_main, [str(a) for a in args])
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.stdout)
    return result.stdout


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A toy store, a toy store drawn otherwise (fits its runs), and two text stores of other vocabularies."""
    root = tmp_path_factory.mktemp("transfer")
    build_toy(root / "toy.h5", n=200, seed=0)
    build_toy(root / "shifted.h5", n=200, seed=7, spurious=0.5)
    build_toy(root / "wide.h5", n=200, seed=0, dim=12)
    for name, n in (("text", 8), ("words", 12)):
        rows = write_text_rows(root / f"{name}.jsonl", n=n)
        build_table({"train": rows, "val": rows}, root / f"{name}.h5", text_cols=["a"], label_col="y", pair_col="g")
    return root


@pytest.fixture(scope="module")
def table(stores, tmp_path_factory):
    """A toy table over seeds 0, 1, 2 with one transfer column."""
    out = tmp_path_factory.mktemp("tables") / "t"
    ok("table", stores / "toy.h5", "--out", out, "--modes", "augmented", "--seeds", "0,1,2",
       "--transfer", f"shifted={stores / 'shifted.h5'}", *QUICK)
    return out


def test_transfer_specs_are_checked():
    from cftrain.transfer import parse_transfers
    assert parse_transfers(["yelp=a.h5", ("amazon", "b.h5")]) == {"yelp": __import__("pathlib").Path("a.h5"),
                                                                   "amazon": __import__("pathlib").Path("b.h5")}
    for bad, says in ((["yelp"], "expected NAME=STORE"), (["a/b=x.h5"], "must be letters"),
                      (["y=a.h5", "y=b.h5"], "given twice")):
        with pytest.raises(UserError, match=says):
            parse_transfers(bad)


@pytest.mark.parametrize("store, other, says", [
    ("text.h5", "words.h5", "its vocabulary size is 17, the run was trained on 13"),  # 2 specials + 3 words + n digits
    ("toy.h5", "wide.h5", "its feature width is 12"),
    ("toy.h5", "text.h5", "its input kind is 'text'"),
])
def test_a_transfer_store_that_does_not_fit_is_refused_before_any_run(stores, tmp_path, store, other, says):
    for command in (["table", "--modes", "augmented"], ["sweep", "--trials", "1", "--seeds", "0"]):
        refused("cftrain", [command[0], stores / store, "--out", tmp_path / "t", *command[1:], "--transfer",
                            f"x={stores / other}", *QUICK], f"--transfer x={stores / other}", "does not fit", says)
        assert not (tmp_path / "t").exists()


def test_transfer_columns_are_the_means_of_the_seeds_own_eval_files(table, stores):
    row = json.loads((table / "table.json").read_text())["rows"][0]
    seen = [json.loads((table / "augmented" / f"seed-{s}" / "evals" / "shifted.json").read_text()) for s in (0, 1, 2)]
    for split in ("val", "test", "test_shifted"):
        values = np.array([e["splits"][split]["all"]["accuracy"] for e in seen])
        cell = row["transfers"]["shifted"]["splits"][split]["all"]
        assert cell["accuracy"] == pytest.approx(values.mean(), abs=0.01)
        assert cell["stderr"] == pytest.approx(values.std(ddof=1) / math.sqrt(3), abs=0.01)
        assert [r["transfers"]["shifted"][split]["all"]["accuracy"] for r in row["runs"]] == list(values)
    # each eval file is what `cftrain eval` says of that run on that store
    alone = json.loads(ok("eval", table / "augmented" / "seed-1", stores / "shifted.h5"))
    assert alone["splits"] == seen[1]["splits"] and alone["store_digest"] == seen[1]["store_digest"]
    assert alone["consistency"]["val"]["all"]["pairs"] == 50  # eval reports pair consistency too
    assert row["transfers"]["shifted"]["consistency"]["val"]["all"]["consistency"] == pytest.approx(
        np.mean([e["consistency"]["val"]["all"]["consistency"] for e in seen]), abs=0.01)
    md = (table / "table.md").read_text()
    header = md.splitlines()[2]
    assert header.index("val all") < header.index("test_shifted edited") < header.index("val consistency") \
        < header.index("shifted val (n=100)")  # toy n=200: 50 originals + their edits


def test_a_later_transfer_evaluates_finished_runs_without_retraining(table, stores, tmp_path):
    def stamps():
        return {str(p.relative_to(table)): p.stat().st_mtime_ns for p in table.rglob("*")
                if p.name in ("model.pt", "metrics.json") or p.parent.name == "evals"}
    before = stamps()
    build_toy(tmp_path / "again.h5", n=100, seed=3)
    ok("table", stores / "toy.h5", "--out", table, "--modes", "augmented", "--seeds", "0,1,2",
       "--transfer", f"shifted={stores / 'shifted.h5'}", "--transfer", f"again={tmp_path / 'again.h5'}", *QUICK)
    after = stamps()
    assert {k: v for k, v in after.items() if k in before} == before  # no run retrained, no eval redone
    assert sorted(set(after) - set(before)) == [f"augmented/seed-{s}/evals/again.json" for s in (0, 1, 2)]
    row = json.loads((table / "table.json").read_text())["rows"][0]
    assert set(row["transfers"]) == {"shifted", "again"}
    marker = json.loads((table / "augmented" / "seed-0" / ".cfpairs").read_text())
    assert "evals/again.json" in marker["files"]


def test_a_transfer_name_names_one_store(stores, tmp_path):
    """Reusing a name for another store (or a rebuilt one) is refused, naming both, until --force."""
    build_toy(tmp_path / "x.h5", n=100, seed=1)
    build_toy(tmp_path / "y.h5", n=100, seed=2)
    args = ["table", stores / "toy.h5", "--out", tmp_path / "t", "--modes", "augmented", *QUICK]
    ok(*args, "--transfer", f"x={tmp_path / 'x.h5'}")
    first = json.loads((tmp_path / "t" / "augmented" / "evals" / "x.json").read_text())
    before = snapshot(tmp_path / "t")
    line = refused("cftrain", [*args, "--transfer", f"x={tmp_path / 'y.h5'}"], f"--transfer x={tmp_path / 'y.h5'}",
                   "evals/x.json holds an evaluation of another store under that name", str(tmp_path / "x.h5"),
                   "or --force to start the table again")
    assert first["store_digest"][:12] in line and snapshot(tmp_path / "t") == before
    refused("cftrain", ["collect", tmp_path / "t", "--transfer", f"x={tmp_path / 'y.h5'}"], "holds an evaluation")
    ok(*args, "--transfer", f"y={tmp_path / 'y.h5'}")  # another name: a second column
    ok(*args, "--transfer", f"x={tmp_path / 'y.h5'}", "--force")  # starts again: x is y's now
    second = json.loads((tmp_path / "t" / "augmented" / "evals" / "x.json").read_text())
    assert second["store"] == str(tmp_path / "y.h5") and first["store_digest"] != second["store_digest"]


@pytest.mark.parametrize("command", ["table", "sweep", "collect"])
def test_the_training_store_is_not_a_transfer(stores, table, tmp_path, command):
    import shutil
    shutil.copy(stores / "toy.h5", tmp_path / "same.h5")  # another name, the same content
    args = {"table": ["table", stores / "toy.h5", "--out", tmp_path / "t", "--modes", "augmented", *QUICK],
            "sweep": ["sweep", stores / "toy.h5", "--out", tmp_path / "t", "--trials", "1", "--seeds", "0", *QUICK],
            "collect": ["collect", table]}[command]
    refused("cftrain", [*args, "--transfer", f"again={tmp_path / 'same.h5'}"], "is the store",
            "trained on (the same content)", out=tmp_path / "t")


def test_a_sweep_evaluates_its_top_trials_only(stores, tmp_path):
    ok("sweep", stores / "toy.h5", "--out", tmp_path / "s", "--modes", "augmented", "--trials", "3", "--top", "1",
       "--seeds", "0,1", "--transfer", f"shifted={stores / 'shifted.h5'}", *QUICK)
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    best = summary["modes"]["augmented"][0]
    evaluated = sorted(str(p.parent.parent.relative_to(tmp_path / "s")) for p in (tmp_path / "s").rglob("evals/*.json"))
    assert evaluated == sorted(best["runs"])
    values = [json.loads((tmp_path / "s" / run / "evals" / "shifted.json").read_text())["splits"]["test"]["all"]
              ["accuracy"] for run in best["runs"]]
    assert best["transfers"]["shifted"]["test"]["mean"] == pytest.approx(np.mean(values), abs=0.01)
    assert "shifted test" in (tmp_path / "s" / "summary.md").read_text()


def test_collect_adds_a_transfer_in_memory_and_never_writes_the_folder(table, stores, tmp_path):
    build_toy(tmp_path / "late.h5", n=100, seed=4)
    before = snapshot(table)
    text = ok("collect", table, "--transfer", f"late={tmp_path / 'late.h5'}", "--out", tmp_path / "view")
    assert snapshot(table) == before
    assert "late val (n=50)" in text and "shifted val (n=100)" in text
    row = json.loads((tmp_path / "view" / "table.json").read_text())["rows"][0]
    alone = json.loads(ok("eval", table / "augmented" / "seed-2", tmp_path / "late.h5"))
    assert row["runs"][2]["transfers"]["late"] == alone["splits"]


def test_run_metrics_hold_pair_consistency_within_its_bounds(table, stores):
    """Both sides right: at most the worse side's accuracy, at least the sum of both minus 100%."""
    from cfpairs.store import Store
    with Store(stores / "toy.h5") as store:
        pairs = {split: len(store.split(split).pairs_index) for split in store.splits}
    metrics = json.loads((table / "augmented" / "seed-0" / "metrics.json").read_text())
    for split, kinds in metrics["consistency"].items():
        value, groups = kinds["all"]["consistency"], metrics["splits"][split]
        assert kinds["all"]["pairs"] == pairs[split]
        original, edited = groups["original"]["accuracy"], groups["edited"]["accuracy"]
        assert original + edited - 100 - 0.01 <= value <= min(original, edited) + 0.01


def test_a_text_table_gets_a_column_from_cfbuild_transfer(stores, tmp_path):
    """The way users make transfer stores: a yelp-layout file in the trained store's vocabulary."""
    from cfbuild.builders.transfer import build_transfer
    source = tmp_path / "yelp.jsonl"
    source.write_text("".join(json.dumps({"label": i % 2, "text": f"{'good' if i % 2 else 'bad'} film {i}"}) + "\n"
                              for i in range(20)))
    rows = [{"g": i, "a": f"{w} film {i}", "y": y} for i in range(8) for w, y in (("good", "positive"), ("bad", "negative"))]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_table({"train": tmp_path / "rows.jsonl", "val": tmp_path / "rows.jsonl"}, tmp_path / "text.h5",
                text_cols=["a"], label_col="y", pair_col="g")  # classes named as the preset names them
    build_transfer("yelp", str(source), tmp_path / "text.h5", tmp_path / "yelp.h5", sample=12, seed=0)
    text = ok("table", tmp_path / "text.h5", "--out", tmp_path / "t", "--modes", "augmented", "--seeds", "0,1",
              "--transfer", f"yelp={tmp_path / 'yelp.h5'}", *QUICK)
    assert "yelp (n=12)" in text.splitlines()[2]  # one split: the column is the name alone
    row = json.loads((tmp_path / "t" / "table.json").read_text())["rows"][0]
    seen = [json.loads((tmp_path / "t" / "augmented" / f"seed-{s}" / "evals" / "yelp.json").read_text())
            ["splits"]["test"]["all"]["accuracy"] for s in (0, 1)]
    assert row["transfers"]["yelp"]["splits"]["test"]["all"]["accuracy"] == pytest.approx(np.mean(seen), abs=0.01)


def test_a_row_without_a_trained_model_gets_no_transfer_cell(stores, tmp_path):
    ok("table", stores / "toy.h5", "--out", tmp_path / "t", "--modes", "chance,augmented",
       "--transfer", f"shifted={stores / 'shifted.h5'}", *QUICK)
    rows = {r["mode"]: r for r in json.loads((tmp_path / "t" / "table.json").read_text())["rows"]}
    assert rows["chance"]["transfers"] == {} and not (tmp_path / "t" / "chance" / "evals").exists()
    assert "shifted" in rows["augmented"]["transfers"]
    assert (tmp_path / "t" / "table.md").read_text().splitlines()[4].split("|")[-6].strip() == "-"
