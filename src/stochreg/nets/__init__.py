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
from typing import Callable

import torch
from torch import nn

from ..errors import UsageError
from ..pretrained import net_factory as timm_factory
from .base import NETS
from .layers import FractionalMaxPool, set_stochastic_eval  # noqa: F401
# each family's module registers its networks when imported, in this order (the names `stochreg list` shows)
from . import compact, fmp, resnets, mobile  # noqa: F401
from .fmp import FMPNet  # noqa: F401


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
    in it (benchmarks/results/speed/speed.md: fmp-mnist's plain-layout naive step beat the channels-last
    one), so nets with FMP stay in the plain layout."""
    if any(isinstance(m, FractionalMaxPool) for m in model.modules()):
        return torch.contiguous_format
    return torch.channels_last


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
