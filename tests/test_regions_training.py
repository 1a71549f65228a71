"""Training on regions stores: the lazy feature loader, answer types, and GS on the toy VQA store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cfbuild.builders.toy_regions import build_toy_regions
from cfpairs import open_store
from cfpairs.errors import UserError
from cftrain.data import PairBatches, load_split
from cftrain.presets import resolve
from cftrain.train import load_splits, run
from cli.cftrain import main as cftrain
from tests import vqa_fixtures as fx
from tests.vqa_fixtures import build


def test_batches_read_linked_features_and_zero_masked_regions(tmp_path):
    out = build(tmp_path)  # the VQA fixture store, features linked to feats.h5
    with open_store(out, allow_external=True) as store:
        train = load_split(store, "train")
        image_id = store.image_ids
    rows = np.array([0, 5, 0, 2])
    got = train.batch(rows)["features"].numpy()
    feats = fx.features()  # row m of feats.h5 = /regions row m
    for k, row in enumerate(rows):
        image_row = int(train.inputs["image_row"][row])
        expected = feats[image_row] * train.inputs["region_mask"][row].numpy()[:, None]
        np.testing.assert_array_equal(got[k], expected)
    masked = train.inputs["region_mask"].numpy()
    assert (~masked).any() and image_id.size == 4


def test_worker_processes_give_the_same_batches(tmp_path):
    out = build(tmp_path)
    with open_store(out, allow_external=True) as store:
        train = load_split(store, "train")
    in_process = list(PairBatches(train, 4, seed=3).loader(workers=0))
    with_workers = list(PairBatches(train, 4, seed=3).loader(workers=2))
    assert len(in_process) == len(with_workers) > 1
    for a, b in zip(in_process, with_workers):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_answer_types_are_store_subsets_that_keep_only_their_rows(tmp_path):
    out = build(tmp_path)
    with open_store(out, allow_external=True) as store:
        splits = load_splits(store, resolve("vqa", "regions", subsets=["answer_yes_no"]))
        kinds = {name: store[name].examples["answer_type"].astype(str) for name in store.splits}
        for name, data in splits.items():
            assert len(data) == int((kinds[name] == "yes/no").sum())
            written = store[name].subsets  # one subset per answer type the split holds
            assert {k: v.tolist() for k, v in written.items() if k.startswith("answer_")} == \
                {f"answer_{t.replace('/', '_')}": np.flatnonzero(kinds[name] == t).tolist() for t in set(kinds[name])}
        # questions 11 and 14 are yes/no: their counterfactuals share the type, so both pairs survive
        assert len(splits["train"].pairs) == 2
        with pytest.raises(UserError, match="--subsets answer_other: split val of .* has no rows in them"):
            load_splits(store, resolve("vqa", "regions", subsets=["answer_other"]))


def test_eval_loads_splits_with_the_runs_subsets(tmp_path):
    out = build(tmp_path)
    config = resolve("vqa", "regions", mode="gs", subsets=["answer_yes_no"], hidden=[8], epochs=2, batch_size=8,
                     allow_external=True)  # the fixture links its features
    metrics = run(out, tmp_path / "run", config)
    assert metrics["splits"]["test"]["all"]["n"] == 1  # only the yes/no test question
    refused = CliRunner().invoke(cftrain, ["eval", str(tmp_path / "run"), str(out), "--device", "cpu"])
    assert refused.exit_code == 2 and "pass --allow-external" in refused.stderr
    result = CliRunner().invoke(cftrain, ["eval", str(tmp_path / "run"), str(out), "--device", "cpu",
                                          "--allow-external"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["splits"] == metrics["splits"]


@pytest.fixture(scope="module")
def toy_vqa_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("toyvqa")
    build_toy_regions(root / "t.h5", seed=0)
    result = CliRunner().invoke(cftrain, ["table", str(root / "t.h5"), "--out", str(root / "runs"),
                                          "--modes", "chance,original,augmented,gs,gs-random"])
    assert result.exit_code == 0, result.stderr
    return json.loads((root / "runs" / "table.json").read_text()), result.stdout


@pytest.mark.slow
def test_table_has_the_paper_rows_and_vqa_columns(toy_vqa_table):
    table, printed = toy_vqa_table
    assert table["metric"] == "vqa_accuracy"
    assert [r["mode"] for r in table["rows"]] == ["chance", "original", "augmented", "gs", "gs-random"]
    gs = next(r for r in table["rows"] if r["mode"] == "gs")["splits"]
    assert set(gs) == {"train", "val", "test", "test_focused"} and "answer_other" in gs["test"]
    assert [r["name"] for r in table["rows"]][1:] == ["Baseline (BUTD)", "+ CF data", "+ CF data + GS",
                                                      "+ CF data + GS, random relations"]
    assert "| + CF data + GS |" in printed and "test_focused all" in printed


def test_a_trained_butd_run_reloads_for_eval_with_frozen_vectors(tmp_path):
    build_toy_regions(tmp_path / "t.h5", n=40, seed=0)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("".join(f"{w} {' '.join(str(0.1 * (i + k)) for k in range(5))}\n"
                               for i, w in enumerate(["what", "color", "ball", "hint-red"])))
    config = resolve("toy-vqa", "regions", mode="gs", epochs=2, embeddings=str(vectors), hidden=[8])
    metrics = run(tmp_path / "t.h5", tmp_path / "run", config)
    result = CliRunner().invoke(cftrain, ["eval", str(tmp_path / "run"), str(tmp_path / "t.h5")])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["splits"] == metrics["splits"]  # same weights, same predictions
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    state = saved["members"][0]
    from cfbuild.builders.toy_regions import VOCAB
    assert torch.allclose(state["embed.weight"][VOCAB.index("color")], torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert saved["frozen_vectors"]["shape"] == [len(VOCAB), 5]
    vectors.unlink()  # eval needs model.pt only, never the vectors file
    assert CliRunner().invoke(cftrain, ["eval", str(tmp_path / "run"), str(tmp_path / "t.h5")]).exit_code == 0
    state["embed.weight"][2, 0] += 1.0  # a damaged frozen table no longer matches its recorded sha256
    torch.save(saved, tmp_path / "run" / "model.pt")
    result = CliRunner().invoke(cftrain, ["eval", str(tmp_path / "run"), str(tmp_path / "t.h5")])
    assert result.exit_code == 2 and "frozen word vectors differ from their recorded sha256" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gs_beats_augmentation_when_a_question_word_is_a_shortcut(toy_vqa_table, tmp_path, seed):
    if seed == 0:
        rows = {r["mode"]: r["splits"]["test"]["all"]["vqa_accuracy"] for r in toy_vqa_table[0]["rows"]}
    else:
        build_toy_regions(tmp_path / "t.h5", seed=seed)
        rows = {mode: run(tmp_path / "t.h5", tmp_path / mode, resolve("toy-vqa", "regions", mode=mode, seed=seed))
                ["splits"]["test"]["all"]["vqa_accuracy"] for mode in ("augmented", "gs")}
    assert rows["gs"] > 50  # the model learns the rule (chance: 25)
    assert rows["gs"] > rows["augmented"] + 15
