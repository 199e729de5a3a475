"""The paper's networks with fractional max-pooling (Graham's FMP nets): for MNIST, CIFAR and a small one."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .base import NETS
from .layers import FractionalMaxPool, StochasticDropout


class FMPNet(nn.Module):
    """Graham's fractional max-pooling net, as SparseConvNet builds it.

    ``layers`` times (conv 2x2, very leaky ReLU (slope 1/3), FMP by ``ratio``), channels 32*l in
    layer l, then conv 2x2 to 32*(layers+1) channels, an optional conv 1x1 to ``head_1x1``
    channels, and conv 1x1 to the classes. ``dropouts`` gives the dropout rate on the output of
    each of those layers but the last (layers + 1 rates, one more with ``head_1x1``). The input
    is zero-padded so that the last pooling leaves 2x2, as SparseConvNet places small images on a
    larger input field.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, layers: int, ratio: float,
                 base: int, dropouts: list[float], head_1x1: int = 0):
        super().__init__()
        c, h, w = image_shape
        rates = layers + 1 + (head_1x1 > 0)
        if len(dropouts) != rates:
            raise ValueError(f"FMPNet with {layers} layers{' and a 1x1 head' if head_1x1 else ''} takes "
                             f"{rates} dropout rates, got {len(dropouts)}")
        sizes = [2]  # spatial size after each pooling, built from the last one backwards
        for _ in range(layers):
            sizes.insert(0, math.ceil(sizes[0] * ratio) + 1)  # before the pooling and its 2x2 conv
        self.input_size = sizes[0]
        if self.input_size < max(h, w):
            raise ValueError(f"FMPNet with {layers} layers takes images up to {self.input_size}px, got {h}x{w}")

        def dropout(p: float) -> nn.Module:
            return StochasticDropout(p) if p > 0 else nn.Identity()

        blocks: list[nn.Module] = []
        channels = c
        for layer in range(1, layers + 1):
            out = base * layer
            blocks += [nn.Conv2d(channels, out, 2), nn.LeakyReLU(1 / 3, inplace=True),
                       FractionalMaxPool(sizes[layer]), dropout(dropouts[layer - 1])]
            channels = out
        head = [(2, base * (layers + 1))] + ([(1, head_1x1)] if head_1x1 else [])
        for (kernel, out), p in zip(head, dropouts[layers:]):
            blocks += [nn.Conv2d(channels, out, kernel), nn.LeakyReLU(1 / 3, inplace=True), dropout(p)]
            channels = out
        blocks += [nn.Conv2d(channels, num_classes, 1), nn.Flatten()]
        self.body = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Inputs are padded to the field; a larger one (a transformation's canvas too big for
        # this net) would be cropped by a negative pad, silently: refuse it.
        pad_w, pad_h = self.input_size - x.shape[-1], self.input_size - x.shape[-2]
        if pad_w < 0 or pad_h < 0:
            raise UsageError(f"fractional max-pooling net takes inputs up to {self.input_size}px, got "
                             f"{x.shape[-2]}x{x.shape[-1]} (a transformation canvas too large for it?)")
        left, top = pad_w // 2, pad_h // 2
        return self.body(F.pad(x, (left, pad_w - left, top, pad_h - top)))


@NETS.register("fmp-mnist")
def fmp_mnist(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The authors' MNIST network (their mnist.cpp): 6 x (conv 2x2 + FMP sqrt(2)), 32*l channels,
    conv 2x2 to 224, conv 1x1 to 256, then to the classes; dropout on those layers' outputs
    0, 0, 0, 0.1, 0.2, 0.3, 0.4, 0.5."""
    return FMPNet(image_shape, num_classes, layers=6, ratio=math.sqrt(2), base=32,
                  dropouts=[0, 0, 0, 0.1, 0.2, 0.3, 0.4, 0.5], head_1x1=256)


def rising_dropouts(layers: int, top: float) -> list[float]:
    """Dropout rising linearly with depth to ``top`` over ``layers`` FMP layers, ``top`` on the head."""
    return [top * layer / layers for layer in range(1, layers + 1)] + [top]


def fmp_layers_to_cover(size: int, ratio: float) -> int:
    """The fewest FMP layers whose input field (built back from a 2x2 output) covers ``size`` px."""
    layers, field = 0, 2
    while field < size:
        field = math.ceil(field * ratio) + 1
        layers += 1
    return layers


@NETS.register("fmp-cifar")
def fmp_cifar(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Graham's CIFAR net as the authors used it: 12 x (conv 2x2 + FMP 2^(1/3)), 96*l channels,
    dropout rising to 0.5 (27M parameters); a 117 px input field, on which the 32 px image sits on its
    padded canvas. A GPU net."""
    return FMPNet(image_shape, num_classes, layers=12, ratio=2 ** (1 / 3), base=96,
                  dropouts=rising_dropouts(12, 0.5))


@NETS.register("fmp-small")
def fmp_small(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The authors' smaller FMP net for SVHN and NORB: FMP sqrt(2), 32*l channels, dropout rising
    to 0.1, with the fewest layers whose field covers the image plus a 16 px canvas on each side
    (8 layers for 32 px SVHN, 10 for 96 px NORB)."""
    layers = fmp_layers_to_cover(max(image_shape[1:]) + 32, math.sqrt(2))
    return FMPNet(image_shape, num_classes, layers=layers, ratio=math.sqrt(2), base=32,
                  dropouts=rising_dropouts(layers, 0.1))
