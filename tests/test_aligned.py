"""`cfbuild aligned`: two aligned tables (contrast sets' layout) and one table with an original and
an edited column (sentiment rewrites' layout, headerless), on files written here; every check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import cfpairs
from cli.cfbuild import main as cfbuild
from tests.helpers import refused

ORIGINAL = "Sentiment\tText\nPositive\tA warm and funny film.\nNegative\tA dull, slow film.\nPositive\tGreat acting.\n"
CONTRAST = "Sentiment\tText\nNegative\tA cold and unfunny film.\nPositive\tA sharp, quick film.\nNegative\tPoor acting.\n"


def ok(*args):
    result = CliRunner().invoke(cfbuild, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return result


def test_two_aligned_tables(tmp_path):
    (tmp_path / "original.tsv").write_text(ORIGINAL)
    (tmp_path / "contrast.tsv").write_text(CONTRAST)
    ok("aligned", "--file", tmp_path / "original.tsv", "--edited-file", tmp_path / "contrast.tsv",
       "--out", tmp_path / "s.h5")
    with cfpairs.open_store(tmp_path / "s.h5") as store:
        test = store["test"]
        assert store.splits == ["test"] and store.class_names == ["Negative", "Positive"]
        assert test.examples["text"].tolist() == ["A warm and funny film.", "A cold and unfunny film.",
                                                  "A dull, slow film.", "A sharp, quick film.", "Great acting.",
                                                  "Poor acting."]
        assert test.examples["id"].tolist() == ["original.tsv:2", "contrast.tsv:2", "original.tsv:3",
                                                "contrast.tsv:3", "original.tsv:4", "contrast.tsv:4"]
        assert test.examples["label"].tolist() == [1, 0, 0, 1, 1, 0]
        assert test.pairs.tolist() == [[0, 1], [2, 3], [4, 5]] and set(test.pair_kinds) == {"edited"}


def test_one_headerless_table_with_constant_labels(tmp_path):
    (tmp_path / "reference.0").write_text("the food was cold\tthe food was hot\nrude staff\tkind staff\n")
    ok("aligned", "--file", tmp_path / "reference.0", "--no-header", "--names", "original,rewrite",
       "--original-col", "original", "--edited-col", "rewrite", "--original-label", "negative",
       "--edited-label", "positive", "--split", "train", "--out", tmp_path / "s.h5")
    with cfpairs.open_store(tmp_path / "s.h5") as store:
        train = store["train"]
        assert store.class_names == ["negative", "positive"]
        assert train.examples["id"].tolist() == ["reference.0:1:original", "reference.0:1:rewrite",
                                                 "reference.0:2:original", "reference.0:2:rewrite"]
        assert train.examples["label"].tolist() == [0, 1, 0, 1] and len(train.pairs) == 2


def test_one_table_with_label_columns(tmp_path):
    (tmp_path / "t.csv").write_text("before,after,y0,y1\n\"good, really\",bad,1,0\nfine,awful,1,0\n")
    ok("aligned", "--file", tmp_path / "t.csv", "--original-col", "before", "--edited-col", "after",
       "--original-label-col", "y0", "--edited-label-col", "y1", "--out", tmp_path / "s.h5")
    with cfpairs.open_store(tmp_path / "s.h5") as store:
        assert store["test"].examples["text"][0] == "good, really" and store.class_names == ["0", "1"]


def test_drops_are_counted_and_named(tmp_path):
    (tmp_path / "o.tsv").write_text("Sentiment\tText\nPositive\tsame words\nPositive\t\nPositive\tkept label\n"
                                    "Positive\ta\n")
    (tmp_path / "e.tsv").write_text("Sentiment\tText\nNegative\tsame words\nNegative\tempty original\n"
                                    "Positive\tkept label too\nNegative\tb\n")
    result = ok("aligned", "--file", tmp_path / "o.tsv", "--edited-file", tmp_path / "e.tsv", "--out", tmp_path / "s.h5")
    with cfpairs.open_store(tmp_path / "s.h5") as store:
        report = json.loads(store._store.attr("report"))
        test = store["test"]
        assert report["dropped_empty_text"] == 1 and report["dropped_empty_text_first"] == ["o.tsv:3"]
        assert report["unpaired_same_label"] == 1 and report["unpaired_same_label_first"] == ["e.tsv:4"]
        assert report["splits"]["test"]["pairs_dropped_identical"] == ["line e.tsv:2"]
        assert len(test) == 6 and test.pairs.tolist() == [[4, 5]]  # rows kept, three pairs left out
    assert "dropped empty text: 1" in result.stdout and "unpaired same label first: e.tsv:4" in result.stdout


def test_vocab_from_a_trained_store_evaluates_its_runs(work, tmp_path):
    rows = "\n".join(f"{y}\t{t} film {i}" for i in range(4) for y, t in (("1", "good"),)) + "\n"
    edits = "\n".join(f"{y}\t{t} film {i}" for i in range(4) for y, t in (("0", "bad"),)) + "\n"
    (tmp_path / "o.tsv").write_text("y\ta\n" + rows)
    (tmp_path / "e.tsv").write_text("y\ta\n" + edits)
    ok("aligned", "--file", tmp_path / "o.tsv", "--edited-file", tmp_path / "e.tsv", "--text-col", "a",
       "--label-col", "y", "--vocab-from", work / "text.h5", "--out", tmp_path / "contrast.h5")
    with cfpairs.open_store(tmp_path / "contrast.h5") as store, cfpairs.open_store(work / "text.h5") as trained:
        assert store.vocab == trained.vocab and store.class_names == trained.class_names
        assert np.array_equal(store["test"].examples["tokens"][0, :3], trained["train"].examples["tokens"][0, :3])
    from cli.cftrain import main as cftrain
    result = CliRunner().invoke(cftrain, ["eval", str(work / "text-run"), str(tmp_path / "contrast.h5")])
    assert result.exit_code == 0 and json.loads(result.stdout)["splits"]["test"]["all"]["n"] == 8, result.stderr


BAD = {
    "lengths differ": (["--edited-file", "{e}"], "o.tsv has 3 rows and {e} 2: row k of --edited-file must edit row k"),
    "both layouts": (["--edited-file", "{e}", "--original-col", "a", "--edited-col", "b"], "not both"),
    "no layout": ([], "give --edited-file (two aligned tables) or both --original-col and --edited-col"),
    "label column and constant": (["--original-col", "Text", "--edited-col", "Text", "--original-label", "x",
                                   "--original-label-col", "Sentiment", "--edited-label", "y"],
                                  "give exactly one of --original-label-col and --original-label"),
    "headerless without names": (["--no-header", "--original-col", "1", "--edited-col", "2", "--original-label",
                                  "a", "--edited-label", "b"], "--no-header needs --names"),
    "a missing column": (["--edited-file", "{o}", "--text-col", "Body"], "missing column(s) 'Body'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_nothing_written(tmp_path, case):
    (tmp_path / "o.tsv").write_text(ORIGINAL)
    (tmp_path / "e.tsv").write_text("Sentiment\tText\nNegative\tx\nPositive\ty\n")
    args, fragment = BAD[case]
    fill = {"o": tmp_path / "o.tsv", "e": tmp_path / "e.tsv"}
    refused("cfbuild", ["aligned", "--file", tmp_path / "o.tsv", *[a.format(**fill) for a in args],
                        "--out", tmp_path / "s.h5"], fragment.format(**fill), out=tmp_path / "s.h5")
