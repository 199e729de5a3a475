"""The stochastic layers the networks share: fractional max-pooling and dropout that stay random for
test-time averaging, and the convolution + batch norm + ReLU block."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
