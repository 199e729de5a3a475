"""Networks for small images, registered by name, with their stochastic perturbations.

Each factory takes the image shape (C, H, W) and the number of classes and returns a module
mapping float images to logits. The perturbations that make n passes of one image differ are
dropout and fractional max-pooling; both are random in training mode and deterministic in eval
mode, so a trained model gives one answer per image unless test-time averaging asks otherwise
(:func:`set_stochastic_eval`).

    >>> net = NETS.get("compact")((1, 28, 28), 10)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UsageError
from .registry import Registry

NETS: Registry[Callable[[tuple[int, int, int], int], nn.Module]] = Registry("network")


class FractionalMaxPool(nn.Module):
    """Fractional max-pooling (Graham 2014) to a fixed output size, pseudo-random regions.

    In training mode every sample and channel draws its own pooling regions (a perturbation);
    in eval mode the regions are fixed (the centre of the random range) so predictions are
    deterministic, unless ``stochastic_eval`` is set for test-time averaging.
    """

    def __init__(self, output_size: int):
        super().__init__()
        self.output_size = output_size
        self.stochastic_eval = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        samples = None
        if not (self.training or self.stochastic_eval):
            samples = torch.full((x.shape[0], x.shape[1], 2), 0.5, dtype=x.dtype, device=x.device)
        return F.fractional_max_pool2d(x, kernel_size=2, output_size=self.output_size,
                                       _random_samples=samples)


class StochasticDropout(nn.Dropout):
    """Dropout that can stay on in eval mode, for test-time averaging over stochastic passes."""

    stochastic_eval = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, self.training or self.stochastic_eval, self.inplace)


class StochasticDropout2d(nn.Dropout2d):
    stochastic_eval = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout2d(x, self.p, self.training or self.stochastic_eval, self.inplace)


def set_stochastic_eval(model: nn.Module, on: bool) -> None:
    """Keeps dropout and fractional max-pooling random in eval mode (for test-time averaging)."""
    for module in model.modules():
        if hasattr(module, "stochastic_eval"):
            module.stochastic_eval = on


def conv_bn(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


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


class FMPNet(nn.Module):
    """Graham's fractional max-pooling net as the authors configured it for MNIST.

    ``layers`` times (conv 2x2, very leaky ReLU (slope 1/3), FMP by ``ratio``), channels 32*l in
    layer l, dropout rising linearly from 0 to ``dropout`` with depth, then conv 2x2 and conv
    1x1 to the classes. The input is zero-padded so that the last pooling leaves 2x2, as
    SparseConvNet places small images on a larger input field.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, layers: int = 6,
                 ratio: float = math.sqrt(2), base: int = 32, dropout: float = 0.5):
        super().__init__()
        c, h, w = image_shape
        sizes = [2]  # spatial size after each pooling, built from the last one backwards
        for _ in range(layers):
            sizes.insert(0, math.ceil(sizes[0] * ratio) + 1)  # before the pooling and its 2x2 conv
        self.input_size = sizes[0]
        if self.input_size < max(h, w):
            raise ValueError(f"FMPNet with {layers} layers takes images up to {self.input_size}px, got {h}x{w}")
        self.pad = (self.input_size - w, self.input_size - h)
        blocks: list[nn.Module] = []
        channels = c
        for layer in range(1, layers + 1):
            out = base * layer
            blocks += [StochasticDropout(dropout * (layer - 1) / layers) if layer > 1 else nn.Identity(),
                       nn.Conv2d(channels, out, 2), nn.LeakyReLU(1 / 3, inplace=True),
                       FractionalMaxPool(sizes[layer])]
            channels = out
        blocks += [StochasticDropout(dropout), nn.Conv2d(channels, base * (layers + 1), 2),
                   nn.LeakyReLU(1 / 3, inplace=True), StochasticDropout(dropout),
                   nn.Conv2d(base * (layers + 1), num_classes, 1), nn.Flatten()]
        self.body = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, top = self.pad[0] // 2, self.pad[1] // 2
        x = F.pad(x, (left, self.pad[0] - left, top, self.pad[1] - top))
        return self.body(x)


@NETS.register("fmp-mnist")
def fmp_mnist(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The authors' MNIST network: 6 x (conv 2x2 + FMP sqrt(2)), 32*l channels, dropout 0 -> 0.5."""
    return FMPNet(image_shape, num_classes, layers=6, ratio=math.sqrt(2), base=32, dropout=0.5)


@NETS.register("compact-small")
def compact_small(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The compact net at half width (16-32-64 channels): about 2.5x faster, 33k parameters."""
    return compact(image_shape, num_classes, width=16)


def build_net(name: str, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Builds the registered network ``name`` for images of ``image_shape`` (C, H, W), and checks
    with one tiny forward pass that it can take them: images too small for its poolings, or
    too large for its input field, are a UsageError here rather than a torch error mid-run."""
    factory = NETS.get(name)
    c, h, w = image_shape
    try:
        net = factory((c, h, w), num_classes)
        with torch.no_grad():
            net.eval()(torch.zeros(2, c, h, w))
    except (ValueError, RuntimeError) as exc:
        raise UsageError(f"network {name} cannot take {c}x{h}x{w} images: {str(exc).splitlines()[0]}") from None
    return net.train()


def preferred_memory_format(model: nn.Module) -> torch.memory_format:
    """The layout a network trains fastest in. Channels-last speeds up the convolutions of the
    compact and LeNet nets by 20-25% on the CPU, but fractional max-pooling runs about 20% slower
    in it (benchmarks/results/speed.md: fmp-mnist's plain-layout naive step beat the channels-last
    one), so nets with FMP stay in the plain layout."""
    if any(isinstance(m, FractionalMaxPool) for m in model.modules()):
        return torch.contiguous_format
    return torch.channels_last


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
