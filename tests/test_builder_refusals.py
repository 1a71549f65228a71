"""Builders refuse data that is plainly wrong, naming the rows, and build it when the user says
they mean it (`--allow ...`); presets declare their label conventions; provenance names the
right line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cfpairs.store import Store
from tests.helpers import ok, refused


def rows_file(path, rows, header=("g", "text", "label")):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def table_args(path, out, *extra):
    return ["table", "--file", path, "--text-col", "text", "--label-col", "label", "--pair-col", "g", "--out", out,
            *extra]


def good_rows(n=4):
    return [r for i in range(n) for r in ((i, f"good film {i}", "pos"), (i, f"bad film {i}", "neg"))]


@pytest.mark.parametrize("bad, fragment", [
    ("pos ", "labels 'pos' (line 2) and 'pos ' (line 10) differ only by case or surrounding spaces"),
    ("Pos", "labels 'pos' (line 2) and 'Pos' (line 10) differ only by case"),
    ("p\u043es", "('pos', 'p\\u043es': Unicode forms, invisible characters, look-alike letters"),  # Cyrillic o
    ("\u200fpos", "read as one label"),                                                          # a bidi mark
    ("po\u200ds", "read as one label"),                                                          # zero-width joiner
    ("\uff50\uff4f\uff53", "read as one label"),                                                # fullwidth letters
])
def test_label_spellings_are_one_class_unless_allowed(tmp_path, bad, fragment):
    path = rows_file(tmp_path / "a.csv", good_rows() + [(9, "fine film", f'"{bad}"'), (9, "awful film", "neg")])
    refused("cfbuild", table_args(path, tmp_path / "s.h5"), str(path), fragment, "--allow label-spellings",
            out=tmp_path / "s.h5")
    ok("cfbuild", table_args(path, tmp_path / "s.h5", "--allow", "label-spellings"))
    with Store(tmp_path / "s.h5") as store:
        assert sorted(store.class_names) == sorted(["neg", "pos", bad])


def test_numbers_spelled_two_ways_are_one_label(tmp_path):
    rows = [r for i in range(4) for r in ((i, f"good film {i}", "1"), (i, f"bad film {i}", "0"))]
    path = rows_file(tmp_path / "n.csv", rows + [(9, "fine film", "1.0"), (9, "awful film", "0")])
    refused("cfbuild", table_args(path, tmp_path / "s.h5"), "labels '1' (line 2) and '1.0' (line 10) read as one label",
            out=tmp_path / "s.h5")


@pytest.mark.parametrize("bad, fragment", [("NaN", "line 10: NaN label"), ("", "line 10: empty label")])
def test_empty_and_nan_labels_are_refused_by_line(tmp_path, bad, fragment):
    path = rows_file(tmp_path / "a.csv", good_rows() + [(9, "fine film", bad), (9, "awful film", "neg")])
    refused("cfbuild", table_args(path, tmp_path / "s.h5"), f"{path}: {fragment} in column 'label'",
            out=tmp_path / "s.h5")


def test_one_class_per_row_is_refused_as_columns_swapped(tmp_path):
    rows = [(i, "pos" if i % 2 else "neg", f"review number {i}") for i in range(400)]
    path = rows_file(tmp_path / "a.csv", rows)  # text and label swapped: 400 "classes"
    refused("cfbuild", table_args(path, tmp_path / "s.h5"), "column 'label' has 400 classes for 400 rows",
            "columns swapped?", "--allow many-classes", out=tmp_path / "s.h5")


def test_ten_thousand_one_example_classes_are_refused_then_allowed(tmp_path):
    rows = [(i // 2, f"text {i}", f"class{i}") for i in range(10_000)]
    path = rows_file(tmp_path / "a.csv", rows)
    refused("cfbuild", table_args(path, tmp_path / "s.h5"), "10000 classes for 10000 rows", out=tmp_path / "s.h5")


def aligned_args(tmp_path, original, edited, *extra):
    for name, rows in (("o.tsv", original), ("e.tsv", edited)):
        (tmp_path / name).write_text("Sentiment\tText\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    return ["aligned", "--file", tmp_path / "o.tsv", "--edited-file", tmp_path / "e.tsv", "--out", tmp_path / "s.h5",
            *extra]


def test_aligned_with_columns_swapped_is_refused(tmp_path):
    original = [("Positive", f"a fine film number {i}") for i in range(60)]
    edited = [("Negative", f"a poor film number {i}") for i in range(60)]
    args = aligned_args(tmp_path, original, edited, "--text-col", "Sentiment", "--label-col", "Text")
    refused("cfbuild", args, "column 'label' has 120 classes for 120 rows", "columns swapped?", out=tmp_path / "s.h5")


def test_a_build_without_pairs_is_refused_unless_allowed(tmp_path):
    same = [("Positive", f"a fine film {i}") for i in range(5)]
    args = aligned_args(tmp_path, same, [("Positive", f"a good film {i}") for i in range(5)])
    refused("cfbuild", args, "the build made no pair (test 0)", "5 of 5 edits have the same label as their original",
            "--allow no-pairs", out=tmp_path / "s.h5")
    ok("cfbuild", args + ["--allow", "no-pairs"])
    with Store(tmp_path / "s.h5") as store:
        assert store.split("test").pairs_index.shape == (0, 2) and len(store.split("test")) == 10


# ---------------------------------------------------------------- presets declare their labels


@pytest.fixture
def trained(tmp_path):
    """A text store whose classes are named (negative, positive), as the presets name them."""
    path = rows_file(tmp_path / "t.csv", [r for i in range(6) for r in ((i, f"good food {i}", "positive"),
                                                                          (i, f"bad food {i}", "negative"))])
    ok("cfbuild", table_args(path, tmp_path / "trained.h5"))
    return tmp_path / "trained.h5"


def yelp_args(tmp_path, trained, labels, *extra):
    (tmp_path / "yelp.csv").write_text("label,text\n" + "".join(f"{y},review {i}\n" for i, y in enumerate(labels)))
    return ["transfer", "--preset", "yelp", "--source", tmp_path / "yelp.csv", "--vocab-from", trained,
            "--out", tmp_path / "y.h5", *extra]


def test_yelp_raw_one_two_convention_keeps_both_classes(tmp_path, trained):
    labels = [1, 2] * 10  # the original CSV release: 1 = negative, 2 = positive
    result = ok("cfbuild", yelp_args(tmp_path, trained, labels, "--sample", "20"))
    assert "1 = negative, 2 = positive" in result.stdout
    with Store(tmp_path / "y.h5") as store, Store(trained) as t:
        test = store.split("test")
        rows = [int(i.split(":")[1]) for i in test.read("id")]
        names = [t.class_names[c] for c in test.read("label")]
        assert names == ["negative" if labels[r] == 1 else "positive" for r in rows] and len(rows) == 20


@pytest.mark.parametrize("labels, fragment", [
    ([1] * 6, "fit several of the preset 'yelp''s conventions"),
    ([0, 1, 3] * 3, "labels '0', '1', '3' fit none of the preset 'yelp''s conventions"),
    ([0] * 6, "no row has the label of class 'positive'"),
])
def test_labels_that_do_not_match_a_convention_are_refused(tmp_path, trained, labels, fragment):
    refused("cfbuild", yelp_args(tmp_path, trained, labels), fragment, out=tmp_path / "y.h5")


def test_a_missing_class_can_be_meant(tmp_path, trained):
    ok("cfbuild", yelp_args(tmp_path, trained, [0] * 6, "--allow", "missing-class"))


def test_multinli_labels_map_by_class_name_not_position(tmp_path):
    """A store whose classes are in another order: MultiNLI's 0 (entailment) must be 'entailment'."""
    rows = [{"g": i, "p": f"a man {i}", "h": f"a person {y}", "y": y} for i in range(4)
            for y in ("contradiction", "entailment", "neutral")]
    (tmp_path / "nli.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ok("cfbuild", ["table", "--file", tmp_path / "nli.jsonl", "--text-col", "p", "--text2-col", "h", "--label-col",
                   "y", "--pair-col", "g", "--out", tmp_path / "nli.h5"])
    (tmp_path / "mnli.jsonl").write_text("".join(
        json.dumps({"premise": f"a man {i}", "hypothesis": "a person", "label": i % 3}) + "\n" for i in range(9)))
    ok("cfbuild", ["transfer", "--preset", "multinli", "--source", tmp_path / "mnli.jsonl", "--vocab-from",
                   tmp_path / "nli.h5", "--out", tmp_path / "m.h5"])
    with Store(tmp_path / "m.h5") as store:
        names = [store.class_names[c] for c in store.split("test").read("label")]
        assert store.class_names == ["contradiction", "entailment", "neutral"]
    assert names == [("entailment", "neutral", "contradiction")[i % 3] for i in range(9)]


# ---------------------------------------------------------------- import, provenance, odd bytes


def test_import_refuses_class_names_that_are_not_a_list(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "train.csv").write_text("text,label,pair_id,is_counterfactual\ngood,1,0,false\nbad,0,0,true\n")
    (tmp_path / "x" / "store.json").write_text(json.dumps({"class_names": "neg,pos"}))
    refused("cfbuild", ["import", tmp_path / "x", "--out", tmp_path / "s.h5"],
            "store.json: class_names must be a list of class names", '"neg,pos"', out=tmp_path / "s.h5")


def test_import_of_a_table_without_rows_is_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    (tmp_path / "x").mkdir()
    pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64()),
                             "pair_id": pa.array([], pa.int64()), "is_counterfactual": pa.array([], pa.bool_())}),
                   tmp_path / "x" / "train.parquet")
    (tmp_path / "x" / "store.json").write_text(json.dumps({"class_names": ["neg", "pos"]}))
    refused("cfbuild", ["import", tmp_path / "x", "--out", tmp_path / "s.h5"], "train.parquet: no data rows",
            out=tmp_path / "s.h5")


def test_import_reads_what_export_to_hf_writes(tmp_path):
    path = rows_file(tmp_path / "a.csv", good_rows())
    ok("cfbuild", table_args(path, tmp_path / "s.h5"))
    ok("cfbuild", ["export", tmp_path / "s.h5", "--to", "hf", tmp_path / "hf"])
    ok("cfbuild", ["import", tmp_path / "hf", "--out", tmp_path / "again.h5"])
    with Store(tmp_path / "s.h5") as a, Store(tmp_path / "again.h5") as b:
        assert a.class_names == b.class_names
        for field in ("text", "label", "is_counterfactual"):
            assert list(a.split("train").read(field)) == list(b.split("train").read(field))
        assert np.array_equal(a.split("train").pairs_index[()], b.split("train").pairs_index[()])


def test_jsonl_ids_and_errors_name_the_right_line_after_blank_lines(tmp_path):
    lines = [json.dumps({"g": 0, "text": "good film", "label": "pos"}), "",
             json.dumps({"g": 0, "text": "bad film", "label": "neg"}), "", "",
             json.dumps({"g": 1, "text": "fine film", "label": "pos"}),
             json.dumps({"g": 1, "text": "poor film", "label": "neg"})]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    ok("cfbuild", table_args(tmp_path / "a.jsonl", tmp_path / "s.h5"))
    with Store(tmp_path / "s.h5") as store:
        assert list(store.split("train").read("id")) == ["a.jsonl:1", "a.jsonl:3", "a.jsonl:6", "a.jsonl:7"]
    lines[6] = json.dumps({"g": 1, "text": "poor film", "label": "NaN"})
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    refused("cfbuild", table_args(tmp_path / "a.jsonl", tmp_path / "t.h5"), "a.jsonl: line 7: NaN label")


def test_a_nul_byte_in_a_text_is_named(tmp_path):
    (tmp_path / "a.csv").write_bytes(b'g,text,label\n0,"good\x00film",pos\n0,bad film,neg\n')
    refused("cfbuild", table_args(tmp_path / "a.csv", tmp_path / "s.h5"),
            "a.csv: line 2: a NUL character in column 'text'", out=tmp_path / "s.h5")
