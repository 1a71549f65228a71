"""torchvision's ResNets (ImageNet), plain torch with torchvision's module names: weights from
--weights (torchvision's state dict), else torchvision's download where torchvision imports."""

from __future__ import annotations

from dataclasses import dataclass

from cfbuild.images.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, Preprocessing, register


@dataclass(frozen=True)
class ResNetBackbone(Backbone):
    def network(self):
        from cfbuild.images.resnet import ResNet  # noqa: PLC0415
        return ResNet(self.name)


for depth, order in (("18", 10), ("34", 11), ("50", 12), ("101", 13), ("152", 14)):
    name, width = f"resnet{depth}", 2048 if depth in ("50", "101", "152") else 512
    register(ResNetBackbone(
        name, Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD), f"torchvision's {name}, ImageNet ({width}-d, stride 32)",
        f"--weights FILE: torchvision's {name} state dict (e.g. from https://download.pytorch.org/models/), or "
        "torchvision to download it", width=width,
        weights_doc="`--weights FILE`: torchvision's state dict (`resnet50-11ad3fa6.pth`, ...); without it, "
                    "torchvision's download where torchvision imports",
        preprocessing_doc="bilinear resize, ImageNet mean and std on [0, 1]", order=order))
