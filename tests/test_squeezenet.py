"""SqueezeNet 1.1 has torchvision's layout (tests/test_backbones.py runs it on a photograph)."""

import torch

from cfbuild.images.backbones import BACKBONES


def test_squeezenet_has_torchvisions_names_and_size():
    state = BACKBONES["squeezenet1_1"].network().state_dict()
    assert sum(t.numel() for t in state.values()) == 1_235_496  # torchvision's documented count
    assert state["features.0.weight"].shape == (64, 3, 3, 3)
    assert state["features.12.expand3x3.weight"].shape == (256, 64, 3, 3)
    assert state["classifier.1.weight"].shape == (1000, 512, 1, 1)


def test_a_224_image_gives_a_14_by_14_map_of_512():
    network = BACKBONES["squeezenet1_1"].network().eval()
    with torch.no_grad():
        fmap = network.features(torch.zeros(1, 3, 224, 224))
        assert fmap.shape == (1, 512, 13, 13)
        assert network.classify(fmap).shape == (1, 1000)
