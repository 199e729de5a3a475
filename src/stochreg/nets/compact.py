"""The compact CPU nets (full, three-quarter and half width) and LeNet with batch norm, for images of
up to 28 px."""
from __future__ import annotations

from torch import nn

from .base import NETS
from .layers import StochasticDropout, StochasticDropout2d, conv_bn


@NETS.register("compact")
def compact(image_shape: tuple[int, int, int], num_classes: int, width: int = 32,
            dropout: float = 0.25) -> nn.Module:
    """A small convnet tuned for speed on a CPU: 3 stages of 3x3 convs with batch norm, max-pooling,
    global average pooling; dropout after each stage is the network's own perturbation."""
    c = image_shape[0]
    w1, w2, w3 = width, 2 * width, 4 * width
    return nn.Sequential(
        conv_bn(c, w1), nn.MaxPool2d(2), StochasticDropout2d(dropout / 2),
        conv_bn(w1, w2), conv_bn(w2, w2), nn.MaxPool2d(2), StochasticDropout2d(dropout / 2),
        conv_bn(w2, w3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), StochasticDropout(dropout),
        nn.Linear(w3, num_classes),
    )


@NETS.register("lenet-bn")
def lenet_bn(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LeNet with batch norm and dropout 0.5, the network of the earlier TensorFlow attempt."""
    c, h, w = image_shape
    return nn.Sequential(
        nn.Conv2d(c, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
        StochasticDropout(0.5), nn.Linear(512, num_classes),
    )



@NETS.register("compact-medium")
def compact_medium(image_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.25) -> nn.Module:
    """The compact net at three-quarter width (24-48-96 channels): cheaper steps, 74k parameters."""
    return compact(image_shape, num_classes, width=24, dropout=dropout)


@NETS.register("compact-small")
def compact_small(image_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.25) -> nn.Module:
    """The compact net at half width (16-32-64 channels): about 2.5x faster, 33k parameters."""
    return compact(image_shape, num_classes, width=16, dropout=dropout)
