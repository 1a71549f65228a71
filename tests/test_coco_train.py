"""Multi-label training on a COCO store: the paper's Table 2 rows, and GS beating augmentation
on edited images when class co-occurrence in train is spurious."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cfbuild.builders.coco import build_coco
from cftrain.presets import resolve
from cftrain.train import run
from cli.cftrain import main as cftrain
from tests.coco_fixtures import write_spurious_coco


def spurious_store(root, seed):
    write_spurious_coco(root, seed=seed)
    out = root / "coco.h5"
    build_coco(root / "instances", root / "edited", [root / "features.npz"], [], out, val_size=100, seed=seed)
    return out


@pytest.mark.slow
def test_table_rows_and_gs_beats_augmentation_on_edited_images(tmp_path):
    store = spurious_store(tmp_path, 0)
    result = CliRunner().invoke(cftrain, ["table", str(store), "--out", str(tmp_path / "runs"),
                                          "--modes", "chance,original,augmented,gs,gs-random"])
    assert result.exit_code == 0, result.stderr
    table = json.loads((tmp_path / "runs" / "table.json").read_text())
    assert [r["mode"] for r in table["rows"]] == ["chance", "original", "augmented", "gs", "gs-random"]
    assert table["metric"] == "map" and "| With edited data + GS |" in result.stdout
    test = {r["mode"]: r["splits"]["test"] for r in table["rows"]}
    assert set(test["gs"]) == {"all", "original", "edited", "hard_edited"}
    assert test["gs"]["edited"]["map"] > test["augmented"]["edited"]["map"] + 5
    assert test["gs"]["edited"]["map"] > test["gs-random"]["edited"]["map"] + 5
    assert test["chance"]["edited"]["map"] < test["original"]["edited"]["map"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_gs_beats_augmentation_over_seeds(tmp_path, seed):
    store = spurious_store(tmp_path, seed)
    edited = {mode: run(store, tmp_path / mode, resolve("coco", "vector", mode=mode, seed=seed))
              ["splits"]["test"]["edited"]["map"] for mode in ("augmented", "gs")}
    assert edited["gs"] > edited["augmented"] + 5
