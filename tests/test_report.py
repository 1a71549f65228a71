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
