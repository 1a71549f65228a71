"""Every registered backbone (`cfbuild/images/backbones/`), whatever is registered: its weights file
read with `weights_only` (a file this test writes from the untrained network), a real photograph
through `cfbuild features` to its declared width, its extraction recorded in the features file;
`--help` and docs/IMAGES.md list it. A backbone added as one file is checked here without a line
of its own."""

from __future__ import annotations

import json

import h5py
import pytest
import torch

from cfbuild.images.backbones import BACKBONES, backbone_help, load_backbone
from cfpairs.errors import UserError
from cfpairs.writer import file_sha256
from tests.image_fixtures import cfbuild


@pytest.fixture(scope="module")
def photograph(tmp_path_factory):
    data = pytest.importorskip("skimage.data")
    from PIL import Image
    folder = tmp_path_factory.mktemp("photo") / "images"
    folder.mkdir()
    Image.fromarray(data.chelsea()).save(folder / "chelsea.jpg", quality=95)  # a cat, 451 x 300
    return folder


def one_per_family() -> list:
    """Each backbone; the quick loop runs the first of each class and width (resnet18 for the basic
    blocks, resnet50 for the bottlenecks), the deeper ones are marked `matrix` (make test)."""
    seen, params = set(), []
    for name, backbone in BACKBONES.items():
        family = (type(backbone), backbone.width)
        params.append(pytest.param(name, marks=pytest.mark.matrix if family in seen else ()))
        seen.add(family)
    return params


@pytest.mark.parametrize("name", one_per_family())
def test_every_backbone_maps_a_photograph_to_its_declared_width(name, photograph, tmp_path, monkeypatch):
    backbone = BACKBONES[name]
    torch.manual_seed(0)
    weights = tmp_path / f"{name}.pth"
    torch.save(backbone.network().state_dict(), weights)
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("weights_only")) or real_load(*a, **k))
    out = tmp_path / "feats.h5"
    code, output = cfbuild("features", "--images", photograph, "--backbone", name, "--weights", weights,
                           "--workers", 0, "--out", out)
    assert code == 0, output
    assert seen and all(flag is True for flag in seen)  # the weights file is read with weights_only
    with h5py.File(out) as h5:
        assert h5["pooled"].shape == (1, backbone.width)
        extraction = json.loads(h5.attrs["extraction"])
    assert extraction["backbone"] == name
    assert extraction["weights"] == {"file": weights.name, "sha256": file_sha256(weights)}
    assert extraction["preprocessing"]["size"] == backbone.preprocessing.size
    assert backbone.summary and backbone.weights_help and backbone.weights_doc and backbone.preprocessing_doc


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_is_listed_in_help_and_docs(name):
    from pathlib import Path
    assert name in backbone_help()
    images = (Path(__file__).resolve().parents[1] / "docs" / "IMAGES.md").read_text()
    assert f"| `{name}`" in images


def test_weights_of_another_backbone_are_refused(tmp_path):
    torch.save(BACKBONES["squeezenet1_1"].network().state_dict(), tmp_path / "other.pth")  # the smallest file
    with pytest.raises(UserError, match="not efficientnet-lite0's weights"):
        load_backbone("efficientnet-lite0", tmp_path / "other.pth")


def test_weights_become_the_networks_in_its_own_dtype(tmp_path):
    """The network is built without initial values and takes the file's tensors: each in the
    network's dtype (a half-precision file gives a float32 network holding the same numbers)."""
    torch.manual_seed(0)
    state = BACKBONES["squeezenet1_1"].network().state_dict()
    torch.save({k: v.half() for k, v in state.items()}, tmp_path / "half.pth")
    loaded = load_backbone("squeezenet1_1", tmp_path / "half.pth").network.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype and loaded[key].device.type == "cpu", key
        assert torch.equal(loaded[key], value.half().to(value.dtype)), key


def test_a_network_with_tensors_outside_its_state_dict_is_built_the_usual_way():
    from cfbuild.images.backbones import Backbone, Preprocessing, filled

    class Scaled(Backbone):
        def network(self):
            net = torch.nn.Linear(2, 2)
            net.register_buffer("scale", torch.full((2,), 3.0), persistent=False)  # not in the weights file
            return net

    backbone = Scaled("scaled", Preprocessing(8, (0, 0, 0), (1, 1, 1)), "", "")
    state = {"weight": torch.eye(2), "bias": torch.ones(2)}
    network = filled(backbone, state, "w.pth", "scaled")
    assert torch.equal(network.scale, torch.full((2,), 3.0)) and torch.equal(network.weight, torch.eye(2))
