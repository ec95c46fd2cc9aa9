"""MobileNetV2 (Sandler et al., 2018) in plain `torch.nn`, laid out like torchvision.

Width multiplier 1.0, 1000 classes: 3,504,872 parameters, as published.
"""

from __future__ import annotations

import torch
from torch import nn

from themis.sample_models import SEED

# (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (3x3), project (1x1, linear); residual when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = [] if expansion == 1 else [_conv_bn_relu(in_ch, hidden, 1, 1)]
        layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


def mobilenet_v2(input_shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(SEED)
    layers: list[nn.Module] = [_conv_bn_relu(input_shape[0], 32, 3, 2)]
    in_ch = 32
    for expansion, out_ch, repeats, stride in SETTINGS:
        for index in range(repeats):
            layers.append(InvertedResidual(in_ch, out_ch, stride if index == 0 else 1, expansion))
            in_ch = out_ch
    layers.append(_conv_bn_relu(in_ch, 1280, 1, 1))
    return nn.Sequential(
        nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, 1000),
    ).eval()
