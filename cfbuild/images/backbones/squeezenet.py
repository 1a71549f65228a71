"""SqueezeNet 1.1 (Iandola et al. 2016; ImageNet, 1.2 M parameters, 512-d features at stride 16):
plain torch with torchvision's module names, so torchvision's `squeezenet1_1-b8a52dc0.pth` loads
without torchvision. A small backbone for quick extraction on CPUs."""

from __future__ import annotations

from dataclasses import dataclass

from cfbuild.images.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, Calls, Preprocessing, register


def squeezenet11():
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    class Fire(nn.Module):
        def __init__(self, cin, squeeze, expand1, expand3):
            super().__init__()
            self.squeeze, self.squeeze_activation = nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True)
            self.expand1x1, self.expand1x1_activation = nn.Conv2d(squeeze, expand1, 1), nn.ReLU(inplace=True)
            self.expand3x3 = nn.Conv2d(squeeze, expand3, 3, padding=1)
            self.expand3x3_activation = nn.ReLU(inplace=True)

        def forward(self, x):
            x = self.squeeze_activation(self.squeeze(x))
            return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                              self.expand3x3_activation(self.expand3x3(x))], 1)

    class SqueezeNet(nn.Module):
        feature_dim, stride = 512, 16

        def __init__(self, classes: int = 1000):
            super().__init__()
            pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), pool(), Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
                pool(), Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(), Fire(256, 48, 192, 192),
                Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))
            self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, classes, 1), nn.ReLU(inplace=True),
                                            nn.AdaptiveAvgPool2d(1))

        def classify(self, feature_map):
            return self.classifier(feature_map).flatten(1)

    net = SqueezeNet()
    return net


@dataclass(frozen=True)
class SqueezeNetBackbone(Backbone):
    def network(self):
        net = squeezenet11()  # its layers keep torchvision's name, `features`: the calls go through Calls
        return Calls(net, net.features, net.classify, net.feature_dim)


register(SqueezeNetBackbone(
    "squeezenet1_1", Preprocessing(224, IMAGENET_MEAN, IMAGENET_STD), "torchvision's SqueezeNet 1.1, ImageNet "
    "(512-d, stride 16)", "--weights FILE: torchvision's squeezenet1_1 state dict (squeezenet1_1-b8a52dc0.pth)",
    width=512, weights_doc="`--weights FILE`: torchvision's state dict (`squeezenet1_1-b8a52dc0.pth`)",
    preprocessing_doc="bilinear resize, ImageNet mean and std on [0, 1]", order=20))
