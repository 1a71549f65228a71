"""ResNet-18/34/50/101/152 (He et al. 2016) in plain torch with torchvision's module names, so a
torchvision state dict (`resnet50-11ad3fa6.pth`, ...) loads as it is, without torchvision
(whose wheels are built for one torch build: a CUDA torchvision does not import beside a CPU torch)."""

from __future__ import annotations

import torch
from torch import nn

DEPTHS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
          "resnet50": ("bottleneck", (3, 4, 6, 3)), "resnet101": ("bottleneck", (3, 4, 23, 3)),
          "resnet152": ("bottleneck", (3, 8, 36, 3))}


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)


class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, 3, stride), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv(width, width, 3), nn.BatchNorm2d(width)
        self.downsample = _shortcut(cin, width * self.expansion, stride)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, width, 1), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv(width, width, 3, stride), nn.BatchNorm2d(width)  # stride on the 3x3 (v1.5)
        self.conv3, self.bn3 = _conv(width, width * 4, 1), nn.BatchNorm2d(width * 4)
        self.downsample = _shortcut(cin, width * 4, stride)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


def _shortcut(cin: int, cout: int, stride: int):
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """`features(images)` (B, C, H/32, W/32), `classify(feature_map)` the ImageNet logits."""
    stride = 32

    def __init__(self, name: str = "resnet50", classes: int = 1000):
        super().__init__()
        kind, depths = DEPTHS[name]
        block = Basic if kind == "basic" else Bottleneck
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for stage, (width, repeats) in enumerate(zip((64, 128, 256, 512), depths), 1):
            layers = []
            for r in range(repeats):
                layers.append(block(cin, width, 2 if r == 0 and stage > 1 else 1))
                cin = width * block.expansion
            setattr(self, f"layer{stage}", nn.Sequential(*layers))
        self.feature_dim = cin
        self.fc = nn.Linear(cin, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(images))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.fc(feature_map.mean(dim=(2, 3)))
