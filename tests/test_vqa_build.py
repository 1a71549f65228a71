"""`cfbuild vqa` on the hand-worked fixture of tests/vqa_fixtures.py."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from cfpairs.check import verify_store
from cfpairs.digest import data_digest
from cfpairs.store import Store
from tests import vqa_fixtures as fx
from tests.vqa_fixtures import build, cfbuild


def by_id(split) -> dict:
    ids = split.read("id").astype(str)
    return {i: row for row, i in enumerate(ids)}


def test_masks_labels_and_pairs_match_the_hand_worked_case(tmp_path):
    with Store(build(tmp_path), allow_external=True) as store:
        assert store.class_names == ["red", "yes"]  # mc answers seen twice in train (val's q16 not counted)
        assert store.splits == ["train", "val", "test", "test_focused"]
        train, val = store.split("train"), store.split("val")
        assert sorted(by_id(train)) == ["11", "11:masked_relevant", "12", "13", "14", "14:masked_relevant", "15"]
        assert sorted(by_id(val)) == ["16", "16:masked_relevant"]  # --seed 0 holds out row 5
        rows, mask = by_id(train), train.read("region_mask")
        assert mask[rows["11"]].tolist() == [True] * 4  # originals keep every box
        assert mask[rows["11:masked_relevant"]].tolist() == [True, False, False, True]  # 0.5, 0.9 > 0.2
        assert mask[rows["14:masked_relevant"]].tolist() == [False] * 4
        assert by_id(val) and val.read("region_mask")[by_id(val)["16:masked_relevant"]].tolist() == [False, True, True, True]
        pairs = {(train.read("id")[a], train.read("id")[b]) for a, b in train.pairs_index[()]}
        assert pairs == {("11", "11:masked_relevant"), ("14", "14:masked_relevant")}
        assert set(train.pairs_kind.asstr()[()]) == {"masked_relevant"}
        index, score = train.read("label_index"), train.read("label_score")
        assert index[rows["11"]].tolist()[:1] == [1] and score[rows["11"], 0] == pytest.approx(1.0)  # yes x7
        assert (index[rows["15"]] == -1).all() and (index[rows["11:masked_relevant"]] == -1).all()
        test = store.split("test")
        t = by_id(test)
        got = {int(i): float(s) for i, s in zip(test.read("label_index")[t["21"]], test.read("label_score")[t["21"]]) if i >= 0}
        assert got == pytest.approx({0: 0.6, 1: 0.3})  # red x2, yes x1; blue is out of the vocabulary
        focused = store.split("test_focused")
        assert focused.read("id").astype(str).tolist() == ["21"]  # 22 keeps nothing at 0.8, 23 has no attention
        assert focused.read("region_mask").tolist() == [[True, False, True, False]]
        report = store.json_attr("report")
        assert report["splits"]["train"]["skipped_no_box_above_threshold"] == 1  # q12
        assert report["splits"]["train"]["skipped_empty_target"] == 1  # q15
        assert report["splits"]["train"]["mean_boxes_masked"] == pytest.approx(3.0)  # (2 + 4) / 2
        assert report["splits"]["test_focused"] == {"kept": 1, "skipped_nothing_kept": 1}
        assert "with --allow-external, each checked against its sha256" in report["training_reads"]


def test_questions_point_at_their_images_and_carry_their_text(tmp_path):
    with Store(build(tmp_path), allow_external=True) as store:
        image_id = store.regions["image_id"][()]
        assert image_id.tolist() == fx.ROW_IMAGES  # linked: every row of the feature file
        train = store.split("train")
        rows = by_id(train)
        assert image_id[train.read("image_row")[rows["12"]]] == 2
        assert train.read("text").astype(str)[rows["13"]] == "What color, is it?"
        vocab = store.vocab
        tokens = train.read("tokens")[rows["11"]][:train.read("length")[rows["11"]]]
        assert [vocab[t] for t in tokens] == ["is", "the", "man", "'s", "shirt", "red"]
        assert train.read("answer_type").astype(str)[rows["11"]] == "yes/no"


def test_thresholds_are_options(tmp_path):
    with Store(build(tmp_path, "--threshold", "0.4", "--focused-threshold", "0.5"), allow_external=True) as store:
        train = store.split("train")
        rows = by_id(train)
        assert "14:masked_relevant" not in rows  # 0.3 is not above 0.4
        assert train.read("region_mask")[rows["11:masked_relevant"]].tolist() == [True, False, False, True]
        focused = store.split("test_focused")
        assert focused.read("id").astype(str).tolist() == ["21", "22"]
        assert focused.read("region_mask").tolist() == [[True, True, True, False], [True, False, False, True]]


def test_linked_features_resolve_after_moving_store_and_features(tmp_path):
    out = build(tmp_path / "a" if (tmp_path / "a").mkdir() is None else None)
    with h5py.File(out) as h5:
        assert isinstance(h5["regions"].get("features", getlink=True), h5py.ExternalLink)
    assert out.stat().st_size < (tmp_path / "a" / "feats.h5").stat().st_size + 200_000
    shutil.move(tmp_path / "a", tmp_path / "b")
    with Store(tmp_path / "b" / "v.h5", allow_external=True) as store:
        np.testing.assert_array_equal(store.regions["features"][()], fx.features())
    assert verify_store(tmp_path / "b" / "v.h5", allow_external=True) is None


def test_several_h5_files_are_joined_by_a_virtual_dataset(tmp_path):
    vqacp = fx.write_vqacp(tmp_path / "d" / "vqacp")
    (tmp_path / "d" / "f").mkdir()
    a, ia = fx.write_h5(tmp_path / "d" / "f" / "train2014.h5", rows=[0, 1])
    b, ib = fx.write_h5(tmp_path / "d" / "f" / "val2014.h5", rows=[2, 3])
    hints = fx.write_hints(tmp_path / "d" / "h.json")
    out = tmp_path / "d" / "v.h5"
    code, _, err = cfbuild("vqa", "--vqacp-dir", vqacp, "--features", a, "--imgid2idx", ia, "--features", b,
                           "--imgid2idx", ib, "--hints", hints, "--val-size", 1, "--min-answer-count", 2, "--out", out)
    assert code == 0, err
    shutil.move(tmp_path / "d", tmp_path / "e")
    with Store(tmp_path / "e" / "v.h5", allow_external=True) as store:
        assert store.regions["features"].is_virtual
        np.testing.assert_array_equal(store.regions["features"][()], fx.features())
        assert store.regions["image_id"][()].tolist() == fx.ROW_IMAGES


def test_tsv_and_materialized_h5_give_identical_stores(tmp_path):
    from_h5 = build(tmp_path, "--materialize", name="h5.h5")
    tsv = fx.write_tsv(tmp_path / "feats.tsv")
    args = fx.vqa_args(tmp_path, tmp_path / "tsv.h5")
    at = args.index("--features")
    args[at + 1:at + 4] = [str(tsv)]  # the TSV needs no --imgid2idx
    code, _, err = cfbuild(*args)
    assert code == 0, err
    with Store(from_h5) as a, Store(tmp_path / "tsv.h5") as b:
        assert data_digest(a.h5) == data_digest(b.h5)  # every example, pair and region dataset is the same
        assert a.digest != b.digest  # the digest covers the build record and sources too, which differ
        assert a.regions["image_id"][()].tolist() == [3, 1, 2]  # image 4 is used by no question
        np.testing.assert_array_equal(b.regions["features"][()], fx.features()[:3])


def test_float16_materialized_features(tmp_path):
    with Store(build(tmp_path, "--materialize", "--float16")) as store:
        feats = store.regions["features"]
        assert feats.dtype == np.float16
        np.testing.assert_allclose(feats[()], fx.features()[:3], rtol=1e-3, atol=1e-3)


def test_tsv_images_with_fewer_boxes_are_padded_and_masked(tmp_path):
    feats = fx.features()
    lines = [fx.tsv_line(img, fx.BOXES[:3] if img == 1 else fx.BOXES, feats[i][:3] if img == 1 else feats[i])
             for i, img in enumerate(fx.ROW_IMAGES)]
    (tmp_path / "feats.tsv").write_text("".join(lines))
    hints = {**fx.HINTS, 11: [0.1, 0.5, 0.9]}
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    fx.write_hints(tmp_path / "hints.json", hints)
    at = args.index("--features")
    args[at + 1:at + 4] = [str(tmp_path / "feats.tsv")]
    code, _, err = cfbuild(*args)
    assert code == 0, err
    with Store(tmp_path / "v.h5", allow_external=True) as store:
        row = store.regions["image_id"][()].tolist().index(1)
        assert store.regions["num_boxes"][row] == 3
        train = store.split("train")
        rows = by_id(train)
        assert train.read("region_mask")[rows["11"]].tolist() == [True, True, True, False]
        assert train.read("region_mask")[rows["11:masked_relevant"]].tolist() == [True, False, False, False]


def test_hints_as_pickle_or_json_and_rebuilds_give_the_same_digest(tmp_path):
    a = build(tmp_path, name="a.h5")
    b = build(tmp_path, name="b.h5", hints_name="hints.pkl")
    with Store(a, allow_external=True) as sa, Store(b, allow_external=True) as sb:
        assert data_digest(sa.h5) == data_digest(sb.h5)  # the same data; the sources (hint files) differ
    c = build(tmp_path, name="c.h5")
    with Store(a, allow_external=True) as sa, Store(c, allow_external=True) as sc:
        assert sa.digest == sc.digest
