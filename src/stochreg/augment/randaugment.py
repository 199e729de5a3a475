"""A RandAugment-style strong augmentation, batched on the tensor's device with no host sync.

Every image gets ``ops`` operations drawn uniformly from :data:`OPERATIONS`, each with its own
magnitude drawn from U(0, 1) (RandAugment with random magnitudes, as FixMatch uses it), then a
cutout square of side up to ``cutout`` times the image side. Geometric operations (rotate, shear,
translate) are one affine warp per slot (kornia); photometric ones are computed for the whole
batch and selected per image with ``torch.where``, so the cost does not depend on the draw.
Sampling is separate from applying, like the affine transformations (transforms.py), so the
parameters come from the run's augmentation generator and can be drawn for a global batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..runtime.devices import to_device
from .geometry import about_centre, outside_squares, warp

OPERATIONS = ("identity", "autocontrast", "brightness", "contrast", "posterize", "solarize", "sharpness",
              "rotate", "shear_x", "shear_y", "translate_x", "translate_y")
_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """b + factor * (a - b), clipped: factor 1 gives a, 0 gives b (PIL's ImageEnhance)."""
    return (b + factor.view(-1, 1, 1, 1) * (a - b)).clamp(0, 1)


def _photometric(name: str, x: torch.Tensor, m: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """Operation ``name`` at magnitude m in [0, 1] (sign +-1 where it has a direction), on every image."""
    if name == "identity":
        return x
    if name == "autocontrast":
        low, high = x.amin(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)
        return torch.where(high > low, (x - low) / (high - low).clamp_min(1e-6), x)
    factor = 1 + 0.9 * m * sign  # enhancement factor in [0.1, 1.9]
    if name == "brightness":
        return _blend(x, torch.zeros_like(x), factor)
    if name == "contrast":
        return _blend(x, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), factor)
    if name == "sharpness":
        kernel = torch.tensor([[1., 1., 1.], [1., 5., 1.], [1., 1., 1.]], device=x.device, dtype=x.dtype) / 13
        blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.expand(x.shape[1], 1, 3, 3),
                           groups=x.shape[1])
        return _blend(x, blurred, factor)
    if name == "posterize":  # keep 8 - round(4 m) bits
        step = torch.pow(2.0, torch.round(4 * m)).view(-1, 1, 1, 1) / 255
        return torch.floor(x / step) * step
    if name == "solarize":  # invert the pixels above 1 - m
        return torch.where(x >= (1 - m).view(-1, 1, 1, 1), 1 - x, x)
    raise ValueError(name)


def _geometric_matrix(kind: torch.Tensor, m: torch.Tensor, sign: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 2, 3) warps: rotation up to 30 degrees, shear up to 0.3, translation up to 30% of the
    side, about the image centre; identity for images whose operation is not geometric."""
    value = m * sign
    is_op = {name: kind == OPERATIONS.index(name) for name in _GEOMETRIC}
    angle = torch.where(is_op["rotate"], value * math.radians(30), torch.zeros_like(value))
    cos, sin = torch.cos(angle), torch.sin(angle)
    shear_x = torch.where(is_op["shear_x"], 0.3 * value, torch.zeros_like(value))
    shear_y = torch.where(is_op["shear_y"], 0.3 * value, torch.zeros_like(value))
    linear = torch.stack([torch.stack([cos, -sin + shear_x], -1),
                          torch.stack([sin + shear_y, cos], -1)], -2)
    shift = torch.stack([torch.where(is_op["translate_x"], 0.3 * width * value, torch.zeros_like(value)),
                         torch.where(is_op["translate_y"], 0.3 * height * value, torch.zeros_like(value))], -1)
    return about_centre(linear, shift, height, width)


@dataclass(frozen=True)
class RandAugment:
    ops: int = 2
    cutout: float = 0.3   # largest cutout side, as a fraction of the image side; 0 = none

    def sample(self, batch: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        params = {
            "kind": torch.randint(0, len(OPERATIONS), (batch, self.ops), generator=generator),
            "magnitude": torch.rand(batch, self.ops, generator=generator),
            "sign": torch.where(torch.rand(batch, self.ops, generator=generator) < 0.5, -1.0, 1.0),
            "cutout_centre": torch.rand(batch, 2, generator=generator),
            "cutout_side": torch.rand(batch, generator=generator) * self.cutout,
        }
        return {k: to_device(v, device) for k, v in params.items()}

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Strongly augments float images (B, C, H, W) in [0, 1] with sampled ``params``."""
        x = images
        height, width = x.shape[-2:]
        for slot in range(self.ops):
            kind, m = params["kind"][:, slot], params["magnitude"][:, slot].to(x.dtype)
            sign = params["sign"][:, slot].to(x.dtype)
            out = x
            for index, name in enumerate(OPERATIONS):
                if name not in _GEOMETRIC and name != "identity":
                    out = torch.where((kind == index).view(-1, 1, 1, 1), _photometric(name, x, m, sign), out)
            x = warp(out, _geometric_matrix(kind, m, sign, height, width))
        if self.cutout:
            half = (params["cutout_side"] * min(height, width) / 2).view(-1, 1, 1)
            x = x * outside_squares(params["cutout_centre"], half, height, width).to(x.dtype)
        return x

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(images, self.sample(images.shape[0], generator, images.device))
