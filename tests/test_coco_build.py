"""`cfbuild coco` on the hand-worked fixture of tests/coco_fixtures.py."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cfpairs.check import verify_store
from cfpairs.store import Store
from cli.cfbuild import main
from tests import coco_fixtures as fx
from tests.vqa_fixtures import tsv_line

P, C, D = [1, 0, 0], [0, 1, 0], [0, 0, 1]  # person, car, dog (class order: category ids 1, 3, 18)


def cfbuild(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stderr


def rows_by_id(split) -> dict:
    ids = split.read("id").astype(str).tolist()
    label = split.read("label")
    return {i: label[k].astype(int).tolist() for k, i in enumerate(ids)}


def add(*vectors):
    return np.sum(vectors, axis=0).tolist() if vectors else [0, 0, 0]


def test_labels_pairs_splits_and_hard_edited_match_the_hand_worked_case(tmp_path):
    vectors = fx.write_coco(tmp_path)
    out = tmp_path / "c.h5"
    code, err = cfbuild(*fx.coco_args(tmp_path, out))
    assert code == 0, err
    assert verify_store(out) is None
    s = fx.stem
    with Store(out) as store:
        assert store.class_names == ["person", "car", "dog"]
        train, val, test = (store.split(n) for n in ("train", "val", "test"))
        # --seed 1 holds out image 30 (with its edit) as val
        assert rows_by_id(val) == {"30": D, s("train2014", 30, 1): D}
        assert rows_by_id(train) == {"9": add(P, D), "25": add(P, C), "42": C, "77": add(),
                                     s("train2014", 9, 18): P, s("train2014", 25, 1): C}
        assert rows_by_id(test) == {"5": add(P, C), "6": add(C, D), "8": add(P, D), "11": add(P, C, D),
                                    s("val2014", 5, 1): C, s("val2014", 6, 18): C, s("val2014", 11, 1): add(C, D),
                                    s("val2014", 8, 18): P}
        ids = test.read("id").astype(str).tolist()
        pairs = {(ids[a], ids[b]) for a, b in test.pairs_index[()]}
        assert pairs == {("5", s("val2014", 5, 1)), ("6", s("val2014", 6, 18)), ("11", s("val2014", 11, 1)),
                         ("8", s("val2014", 8, 18))}
        assert val.pairs_index.shape[0] == 0  # the unchanged edit is kept as an example, not paired
        # car+dog is the only edited test label vector that train never shows
        assert [ids[r] for r in test.subsets["hard_edited"][()]] == [s("val2014", 11, 1)]
        assert test.read("is_counterfactual").tolist() == [False] * 4 + [True] * 4
        x = dict(zip(ids, test.read("x")))
        for key, vector in x.items():  # originals: mean over the boxes; edits: the pooled .npz vector
            np.testing.assert_allclose(vector, vectors[key], rtol=1e-6)
        assert store.json_attr("report")["splits"]["val"]["unchanged_label_edits"] == 1


def test_cv_edits_remove_one_instance(tmp_path):
    fx.write_coco(tmp_path, edits=fx.EDITS_CV)
    out = tmp_path / "c.h5"
    code, err = cfbuild(*fx.coco_args(tmp_path, out, "--edit-kind", "cv"))
    assert code == 0, err
    s = fx.stem
    with Store(out) as store:
        train = rows_by_id(store.split("train"))
        assert train[s("train2014", 25, 103)] == add(P, C)  # another person remains
        assert train[s("train2014", 25, 105)] == P
        assert train[s("train2014", 9, 101)] == D
        ids = store.split("train").read("id").astype(str).tolist()
        paired = {ids[b] for _, b in store.split("train").pairs_index[()]}
        assert paired == {s("train2014", 25, 105), s("train2014", 9, 101)}
        assert rows_by_id(store.split("test"))[s("val2014", 11, 209)] == add(P, C)


def test_tsv_features_keyed_by_stem(tmp_path):
    vectors = fx.write_coco(tmp_path)
    rng = np.random.default_rng(5)
    lines, expected = [], {}
    for key in vectors:
        boxes = rng.normal(size=(2, fx.DIM)).astype(np.float32)
        lines.append(tsv_line(key, np.zeros((2, 4), np.float32), boxes))
        expected[key] = boxes.mean(0)
    (tmp_path / "all.tsv").write_text("".join(lines))
    args = fx.coco_args(tmp_path, tmp_path / "c.h5")
    at = args.index("--features")
    args[at:at + 6] = ["--features", tmp_path / "all.tsv"]
    code, err = cfbuild(*args)
    assert code == 0, err
    with Store(tmp_path / "c.h5") as store:
        test = store.split("test")
        for key, vector in zip(test.read("id").astype(str), test.read("x")):
            np.testing.assert_allclose(vector, expected[key], rtol=1e-6)


def _refused(tmp_path, args, *fragments):
    code, err = cfbuild(*args)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in err, err
    assert not list(tmp_path.glob("c.h5")) and not list(tmp_path.glob(".c.h5*"))


@pytest.mark.parametrize("name, fragment", [
    ("COCO_train2014_9_18.jpg", "not an edited-image name"),
    (fx.stem("train2014", 9, 2) + ".jpg", "category id 2 is not in instances_train2014.json"),
    (fx.stem("train2014", 1234, 1) + ".jpg", "original image 1234 is not in instances_train2014.json"),
])
def test_bad_edited_names(tmp_path, name, fragment):
    fx.write_coco(tmp_path)
    (tmp_path / "edited" / "train2014" / name).write_bytes(b"")
    _refused(tmp_path, fx.coco_args(tmp_path, tmp_path / "c.h5"), fragment)


def test_unknown_annotation_in_cv(tmp_path):
    fx.write_coco(tmp_path, edits={"train2014": [(25, 999)]})
    _refused(tmp_path, fx.coco_args(tmp_path, tmp_path / "c.h5", "--edit-kind", "cv"), "annotation id 999 is not in")


@pytest.mark.parametrize("change, fragment", [
    ("missing", "1 feature key(s) found in no --features file (first: COCO_val2014_000000000006_000000000018)"),
    ("width", "edits.npz: key COCO_val2014_000000000006_000000000018: vector of width 5, expected 4"),
    ("nan", "edits.npz: key COCO_val2014_000000000006_000000000018: NaN"),
])
def test_bad_features(tmp_path, change, fragment):
    vectors = fx.write_coco(tmp_path)
    edited = {k: v for k, v in vectors.items() if k.startswith("COCO_")}
    key = fx.stem("val2014", 6, 18)
    if change == "missing":
        del edited[key]
    else:
        edited[key] = np.ones(5, np.float32) if change == "width" else np.full(fx.DIM, np.nan, np.float32)
    np.savez(tmp_path / "edits.npz", **edited)
    _refused(tmp_path, fx.coco_args(tmp_path, tmp_path / "c.h5"), fragment)
