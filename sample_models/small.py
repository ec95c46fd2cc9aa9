"""Two tiny models that profile in milliseconds: the test suite's real workloads."""

from __future__ import annotations

import torch
from torch import nn

from themis.sample_models import SEED


def small_cnn(input_shape: tuple[int, ...]) -> nn.Module:
    """conv(3->16) -> pool -> conv(16->32) -> conv(32->32) -> global pool -> linear(32->10); 14,666 parameters."""
    torch.manual_seed(SEED)
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    ).eval()


def mlp(input_shape: tuple[int, ...]) -> nn.Module:
    """linear(256->512) -> linear(512->512) -> linear(512->10) with ReLUs; 399,370 parameters."""
    torch.manual_seed(SEED)
    return nn.Sequential(
        nn.Linear(input_shape[0], 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10),
    ).eval()
