"""`cfbuild vqa` on bad input: one line naming the file/key, exit 2, nothing left behind;
and the VQA-HAT path end to end."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cfpairs.store import Store
from cli.cfbuild import main
from tests import vqa_fixtures as fx


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stderr


def assert_refused(tmp_path, args, *fragments):
    code, err = run(args)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    out = tmp_path / "v.h5"
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


def test_question_without_features_is_an_error_unless_skipped(tmp_path):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    fx.write_h5(tmp_path / "feats.h5", rows=[0, 1, 3])  # image 2 is in no feature file
    assert_refused(tmp_path, args, "3 question(s) use 1 image(s) found in no feature file", "first: 2",
                   "--skip-missing-images")
    code, err = run(args + ["--skip-missing-images"])
    assert code == 0, err
    with Store(tmp_path / "v.h5", allow_external=True) as store:
        report = store.json_attr("report")
        assert report["images_missing"]["images"] == 1
        assert report["images_missing"]["questions_skipped"] == {"train": 1, "val": 1, "test": 1}
        assert "12" not in store.split("train").read("id").astype(str)


@pytest.mark.parametrize("hints, fragments", [
    ({11: [0.1, 0.2]}, ["hints.pkl: question 11: 2 scores for the 4 boxes of image 1"]),
    ({11: [0.1, 1.5, 0.0, 0.0]}, ["hints.pkl: question 11: scores must lie in [0, 1], found 1.5"]),
    ({11: [0.1, np.nan, 0.0, 0.0]}, ["question 11: scores must lie in [0, 1], found nan"]),
])
def test_bad_hints(tmp_path, hints, fragments):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5", hints_name="hints.pkl")
    fx.write_hints(tmp_path / "hints.pkl", hints)
    assert_refused(tmp_path, args, *fragments)


def test_annotation_without_question(tmp_path):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    path = tmp_path / "vqacp" / "vqacp_v2_train_questions.json"
    path.write_text(json.dumps([q for q in json.loads(path.read_text()) if q["question_id"] != 13]))
    assert_refused(tmp_path, args, "vqacp_v2_train_annotations.json: annotation of question_id 13 has no question")


def test_malformed_base64_names_file_and_line(tmp_path):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    tsv = fx.write_tsv(tmp_path / "f.tsv")
    lines = tsv.read_text().splitlines(keepends=True)
    fields = lines[2].split("\t")
    fields[4] = "%%" + fields[4]
    lines[2] = "\t".join(fields)
    tsv.write_text("".join(lines))
    at = args.index("--features")
    args[at + 1:at + 4] = [str(tsv)]
    assert_refused(tmp_path, args, "f.tsv:3: field 'boxes' is not valid base64")


def test_h5_row_out_of_range(tmp_path):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    (tmp_path / "feats.pkl").write_bytes(pickle.dumps({1: 0, 2: 1, 3: 10}))
    assert_refused(tmp_path, args, "feats.pkl: image_id 3 -> row 10 is out of range for feats.h5 (4 rows)")


class _Boom:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("which", ["hints.pkl", "feats.pkl"])
def test_pickles_with_code_are_refused_never_run(tmp_path, which):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5", hints_name="hints.pkl")
    target = tmp_path / "pwned"
    (tmp_path / which).write_bytes(pickle.dumps({1: _Boom(target)}))
    assert_refused(tmp_path, args, f"{which}: refusing global posix.system")
    assert not target.exists()


def test_exactly_one_attention_source(tmp_path):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    at = args.index("--hints")
    code, err = run(args[:at] + args[at + 2:])
    assert code == 2 and "exactly one of --hints and --hat-dir" in err


def test_hat_maps_make_the_counterfactual_masks(tmp_path):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    at = args.index("--hints")
    hat = tmp_path / "hat"
    hat.mkdir()
    bright = np.zeros((40, 50), np.uint8)  # half size: resized to the image's 100 x 80
    bright[:20, :25] = 255  # the top-left quarter: box 0
    Image.fromarray(bright).save(hat / "11_1.png")
    Image.fromarray(bright).save(hat / "11_2.png")
    args[at:at + 2] = ["--hat-dir", str(hat)]
    code, err = run(args)
    assert code == 0, err
    with Store(tmp_path / "v.h5", allow_external=True) as store:
        train = store.split("train")
        ids = train.read("id").astype(str).tolist()
        assert [i for i in ids if i.endswith("masked_relevant")] == ["11:masked_relevant"]
        # box 0 (the bright quarter) and box 3 (the whole image) score 1; boxes 1 and 2 score 0
        assert train.read("region_mask")[ids.index("11:masked_relevant")].tolist() == [False, True, True, False]
        hat_entry = [s for s in store.sources if s["file"] == "hat"][0]
        assert hat_entry["size"] == 1  # maps of one question were used


def test_an_image_in_two_feature_files_is_an_error(tmp_path):
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    second, index = fx.write_h5(tmp_path / "more.h5", rows=[1, 3])  # images 1 and 4 again
    assert_refused(tmp_path, args + ["--features", second, "--imgid2idx", index],
                   "feature key 1 is in both feats.h5 and", "more.h5")


def test_feature_files_are_closed_when_a_build_fails(tmp_path, monkeypatch):
    from cfbuild.sources import features

    closed = []
    real_close = features.H5File.close
    monkeypatch.setattr(features.H5File, "close", lambda self: closed.append(self.path.name) or real_close(self))
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5")
    second, index = fx.write_h5(tmp_path / "more.h5", rows=[1, 3])  # a clash: fails after both are open
    assert_refused(tmp_path, args + ["--features", second, "--imgid2idx", index], "feature key 1 is in both")
    assert sorted(closed) == ["feats.h5", "more.h5"]


@pytest.mark.parametrize("materialize", [False, True])
def test_a_features_file_whose_boxes_live_in_another_file_is_refused(tmp_path, materialize):
    """A downloaded features file is as untrusted as a store: its datasets may not read other files."""
    import h5py
    args = fx.vqa_args(tmp_path, tmp_path / "v.h5", *(["--materialize"] if materialize else []))
    (tmp_path / "secret").write_bytes(b"SECRET" * 200)
    with h5py.File(tmp_path / "feats.h5", "r+") as h5:
        del h5["image_bb"]
        h5.create_dataset("image_bb", shape=(4, 4, 4), dtype="<f4", external=[(str(tmp_path / "secret"), 0, 256)])
    assert_refused(tmp_path, args, "feats.h5: /image_bb keeps its bytes in", "secret (HDF5 external storage)")
