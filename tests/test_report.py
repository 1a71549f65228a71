"""The one build-report printer, on a hand-made report of every shape builders produce."""

from cfbuild.report import format_report


def test_report_lines_by_hand():
    report = {
        "missing_splits": ["test"], "answers": 3, "features": "linked", "attention_unused": 0,
        "images_missing": {"images": 0, "questions_skipped": {"train": 0}, "first": []},
        "splits": {
            "train": {"examples": 4, "pairs": 1, "pairs_dropped_identical": ["batch_id 7"],
                      "low_overlap_pairs": [{"pair": "batch_id 9", "jaccard": 0.1}], "notes": ["a note"],
                      "unchanged_first": []},
            "val": {"examples": 2, "pairs": 0},
        },
    }
    assert format_report(report).splitlines() == [
        "notice: split 'test' skipped: its files are absent",
        "answers: 3",
        "features: linked",
        "train: examples 4, pairs 1",
        "  left out of pairs, identical texts: batch_id 7",
        "  low token overlap (Jaccard below 0.2): (pair batch_id 9, jaccard 0.1)",
        "  a note",
        "val: examples 2, pairs 0",
    ]
    report["images_missing"]["images"] = 2
    assert "images missing: images 2" in format_report(report)


def test_long_lists_and_lines_are_summarised_on_a_terminal():
    report = {"splits": {"test": {"examples": 2000, "low_overlap_pairs": [{"pair": f"line {i}", "jaccard": 0.1}
                                                                          for i in range(300)],
                                  "notes": [f"note {i} " + "word " * 400 for i in range(9)]}}}
    text = format_report(report)
    assert max(len(line) for line in text.splitlines()) <= 300
    overlap = next(line for line in text.splitlines() if "low token overlap" in line)
    assert "(pair line 4, jaccard 0.1) ... (295 more; all in the store's report" in overlap
    assert "(pair line 5" not in overlap
    assert "  ... 4 more notes" in text


def test_inspect_of_a_store_with_ten_thousand_classes_stays_readable(tmp_path):
    import numpy as np
    from click.testing import CliRunner
    from cfpairs.store import StoreWriter
    from cli.cfbuild import main
    n = 10_000
    with StoreWriter(tmp_path / "s.h5", task="t", input_kind="vector", label_kind="multiclass",
                     class_names=[f"class{i}" for i in range(n)], build={}, sources=[]) as writer:
        writer.write_split("train", {"id": [str(i) for i in range(n)], "is_counterfactual": np.arange(n) % 2 == 1,
                                     "label": np.arange(n), "x": np.zeros((n, 2), np.float32)},
                           np.arange(n).reshape(-1, 2), ["edited"] * (n // 2))
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "s.h5")])
    assert result.exit_code == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) < 300  # was one 129 KB line
    assert "classes  10000: class0, class1" in result.stdout and "(9992 more; inspect --json lists them)" in result.stdout
    full = CliRunner().invoke(main, ["inspect", str(tmp_path / "s.h5"), "--json"])
    import json
    assert len(json.loads(full.stdout)["splits"]["train"]["labels"]) == n
