"""Model building blocks: the lesson's stride-2 CNN and a plain MLP."""

from __future__ import annotations

from typing import Sequence

from torch import nn

__all__ = ["cnn", "mlp"]


def conv_block(ni: int, nf: int, ks: int = 3, stride: int = 2, norm: bool = True) -> nn.Sequential:
    """Conv (no bias when a batch norm follows: the norm's shift replaces it), norm, ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(nf))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def cnn(
    channels: Sequence[int] = (8, 16, 32, 32), n_out: int = 10, in_channels: int = 1, norm: bool = True
) -> nn.Sequential:
    """The lesson's CNN: stride-2 convs (5x5 first, then 3x3) halving the image each time,
    global average pooling, and a linear head. Takes (batch, in_channels, H, W)."""
    if not channels:
        raise ValueError("cnn needs at least one conv layer in channels.")
    sizes = [in_channels, *channels]
    convs = [conv_block(sizes[i], sizes[i + 1], ks=5 if i == 0 else 3, norm=norm) for i in range(len(channels))]
    return nn.Sequential(*convs, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(sizes[-1], n_out))


def mlp(sizes: Sequence[int] = (784, 50, 10)) -> nn.Sequential:
    """Linear layers with ReLU between them, e.g. the lesson's 784-50-10."""
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least input and output sizes, got {list(sizes)}.")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
