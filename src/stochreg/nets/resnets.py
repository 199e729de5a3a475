"""Residual networks: WRN-28-2 (the semi-supervised benchmarks' network for 32-px images) and ResNet-18."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import NETS


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
