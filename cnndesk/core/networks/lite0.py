"""EfficientNet-Lite0 in plain PyTorch, for the very first answer before the default model's
verified ONNX export exists (a plain ``pip install`` with ``python -m cnndesk.prepare`` skipped).

timm builds the same network, but ``import timm`` pulls in torchvision.ops and torch._dynamo:
seconds of imports the first answer cannot afford (issue 24 point 5). This module needs torch
alone. It mirrors timm's ``tf_efficientnet_lite0`` parameter for parameter (the same names, in
the same order), so the weights load by position exactly as they do into timm's model, and the
outputs match timm's to float rounding (``tests/core/runtime/test_first_answer_unprepared.py``). Only the first
answer uses it; the export, training and Inside the CNN still build timm's network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ARCH = "timm:tf_efficientnet_lite0"
# (expansion, kernel, stride of the first block, output channels, blocks) per stage
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as timm's tf_ models use


class SameConv(nn.Conv2d):
    """TensorFlow's "SAME" padding: pad so that out = ceil(in / stride), the extra pixel after."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]),
                           (x.shape[-2], self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    if stride > 1:
        return SameConv(cin, cout, k, stride, 0, groups=groups, bias=False)
    return nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups, bias=False)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.conv_dw = _conv(cin, cin, k, stride, groups=cin)
        self.bn1 = _bn(cin)
        self.conv_pw = _conv(cin, cout)
        self.bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(F.relu6(self.bn1(self.conv_dw(x)))))
        return x + y if self.residual else y


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.conv_pw = _conv(cin, mid)
        self.bn1 = _bn(mid)
        self.conv_dw = _conv(mid, mid, k, stride, groups=mid)
        self.bn2 = _bn(mid)
        self.conv_pwl = _conv(mid, cout)
        self.bn3 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.bn1(self.conv_pw(x)))
        y = F.relu6(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.residual else y


class Lite0(nn.Module):
    """EfficientNet-Lite0: logits of ``num_classes`` for [N, 3, H, W] inputs."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv_stem = _conv(3, 32, 3, 2)
        self.bn1 = _bn(32)
        stages, cin = [], 32
        for expansion, k, stride, cout, count in STAGES:
            blocks = []
            for i in range(count):
                s = stride if i == 0 else 1
                blocks.append(DepthwiseSeparable(cin, cout, k, s) if expansion == 1
                              else InvertedResidual(cin, cout, k, s, expansion))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = _conv(cin, 1280)
        self.bn2 = _bn(1280)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn1(self.conv_stem(x)))
        x = F.relu6(self.bn2(self.conv_head(self.blocks(x))))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def first_answer_network(spec, weights) -> nn.Module | None:
    """The plain Lite0 network of ``spec`` with its weights, in eval mode; None where ``spec`` is
    not a Lite0 classifier whose weights load by position (timm's network is used then)."""
    from pathlib import Path

    from cnndesk.core.networks.build import map_state_dict, read_state_dict

    if spec.arch != ARCH or spec.base is not None or spec.key_mapping != "positional":
        return None
    model = Lite0(spec.num_classes)
    model.load_state_dict(map_state_dict(model, read_state_dict(Path(weights)), "positional"), strict=True)
    return model.eval()
