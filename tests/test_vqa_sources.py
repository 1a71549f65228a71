"""Readers behind `cfbuild vqa`: streamed JSON lists, answer normalisation, the restricted
unpickler, bottom-up TSV, attention scores from VQA-HAT maps."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
from PIL import Image

import cfbuild.sources.jsonlist as jsonlist
from cfpairs.errors import UserError
from cfbuild.sources.attention import box_scores, hat_maps, hat_scores
from cfbuild.sources.bottomup_tsv import iter_tsv
from cfbuild.sources.safe_pickle import load_pickle
from cfbuild.sources.vqacp import normalize_answer, tokenize_question
from tests import vqa_fixtures as fx


def test_json_list_streams_across_chunk_edges(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonlist, "_CHUNK", 5)  # every element spans several reads
    data = [{"a": i, "t": "é" * i, "l": [1.5, None, True]} for i in range(30)] + [12345, "x", []]
    path = tmp_path / "l.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    sha = []
    assert list(jsonlist.iter_json_list(path, sha)) == data
    assert sha == [hashlib.sha256(path.read_bytes()).hexdigest()]
    path.write_text(" [ ]\n")
    assert list(jsonlist.iter_json_list(path)) == []


@pytest.mark.parametrize("text, message", [("[1,2", "after element 1"), ("[1 2]", "expected ',' or ']'"),
                                           ("{}", "expected a JSON list"), ("[1,]", "element 1 is not valid"),
                                           ("[1] x", "after the closing")])
def test_json_list_errors_name_the_element(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        list(jsonlist.iter_json_list(path))


@pytest.mark.parametrize("raw, expected", [("Two", "2"), ("the dog", "dog"), ("yes!", "yes"), ("2.5", "2.5"),
                                           ("1,000", "1000"), ("couldnt", "couldn't"), ("no.", "no"),
                                           ("red/white", "red white"), ("  Ten\n", "10"), ("x - y", "x y"),
                                           ("an apple", "apple"), ("dont", "don't"), ("yall'll", "y'all'll")])
def test_answers_are_normalised_like_the_vqa_evaluation(raw, expected):
    assert normalize_answer(raw) == expected


def test_question_tokens_follow_bottom_up_preprocessing():
    assert tokenize_question("What's the man's shirt, color?") == ["what", "'s", "the", "man", "'s", "shirt", "color"]


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_restricted_unpickler_reads_data_and_refuses_code(tmp_path):
    data = {1: np.arange(3, dtype=np.float32), "k": [1.5, (2, None)], np.int64(7): {3}}
    for protocol in (2, 4, 5):
        path = tmp_path / f"ok{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        loaded = load_pickle(path)
        np.testing.assert_array_equal(loaded[1], data[1])
        assert loaded["k"] == [1.5, (2, None)] and loaded[7] == {3}
    boom = _Boom()
    boom.target = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({1: boom}))
    with pytest.raises(UserError, match=r"evil.pkl: refusing global posix.system"):
        load_pickle(tmp_path / "evil.pkl")
    assert not boom.target.exists()


def test_tsv_rows_decode_and_bad_rows_name_file_and_line(tmp_path):
    feats = fx.features()
    path = fx.write_tsv(tmp_path / "f.tsv")
    got = {img: image for img, image in iter_tsv(path, wanted={1, 2})}
    assert set(got) == set(fx.ROW_IMAGES) and got[3] is None
    np.testing.assert_array_equal(got[1].features, feats[1])
    np.testing.assert_array_equal(got[1].boxes, fx.BOXES)
    assert (got[1].width, got[1].height) == (fx.WIDTH, fx.HEIGHT)
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[1].split("\t")
    fields[5] = fields[5][:10] + "!!" + fields[5][12:]
    lines[1] = "\t".join(fields)
    path.write_text("".join(lines))
    with pytest.raises(UserError, match=r"f.tsv:2: field 'features' is not valid base64"):
        list(iter_tsv(path))


def test_box_score_matches_masked_means():
    rng = np.random.default_rng(0)
    attention = rng.random((30, 40))
    boxes = np.array([[0, 0, 40, 30], [5, 3, 17, 20], [39, 29, 40, 30], [10, 10, 10, 20]], np.float32)
    expected = []
    for x1, y1, x2, y2 in boxes.astype(int):
        inside = np.zeros(attention.shape, bool)
        inside[y1:y2, x1:x2] = True
        m_in = attention[inside].mean() if inside.any() else 0.0
        m_out = attention[~inside].mean() if (~inside).any() else 0.0
        expected.append(m_in / (m_in + m_out))
    np.testing.assert_allclose(box_scores(attention, boxes), expected)
    assert box_scores(attention, boxes)[0] == 1.0  # the whole image: nothing outside


def test_hat_maps_are_averaged_and_resized(tmp_path):
    block = np.zeros((fx.HEIGHT, fx.WIDTH), np.uint8)
    block[:40, :50] = 255  # exactly box 0 of the fixture
    low = np.where(block > 0, 255, 51).astype(np.uint8)  # 0.2 outside the box
    Image.fromarray(block).save(tmp_path / "11_1.png")
    Image.fromarray(low).save(tmp_path / "11_2.png")
    Image.fromarray(np.full((20, 25), 128, np.uint8)).save(tmp_path / "12_1.png")  # a quarter-size constant map
    (tmp_path / "notes.txt").write_text("ignored")
    maps = hat_maps(tmp_path)
    assert sorted(maps) == [11, 12] and len(maps[11]) == 2
    scores = hat_scores(maps[11], (fx.WIDTH, fx.HEIGHT), fx.BOXES)
    # box 0: inside mean 1, outside mean (0 + 0.2) / 2 = 0.1 -> 1 / 1.1
    assert scores[0] == pytest.approx(1 / 1.1, abs=1e-6)
    # box 3 is the whole image: nothing outside -> 1
    assert scores[3] == pytest.approx(1.0)
    np.testing.assert_allclose(hat_scores(maps[12], (fx.WIDTH, fx.HEIGHT), fx.BOXES[:3]), 0.5, atol=1e-6)
