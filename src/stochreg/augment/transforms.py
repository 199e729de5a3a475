"""Batched stochastic transformations, on the tensor's device, for all n*B views in one call.

Every view gets its own random affine warp: x/y stretch, then one of x-slant, y-slant or rotation
(the authors' digit transform), a translation, optionally a horizontal flip. Sampling the
parameters is separate from applying them (as in kornia's augmentation API), so a
transformation can be replayed exactly::

    >>> aug = TRANSFORMS.get("digits")
    >>> x = torch.rand(8, 1, 28, 28)
    >>> params = aug.sample(len(x), torch.Generator().manual_seed(0))
    >>> torch.equal(aug.apply(x, params), aug.apply(x, params))
    True

The warp itself is :func:`kornia.geometry.transform.warp_affine` (bilinear, zero padding).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ..runtime.devices import to_device
from .geometry import about_centre, outside_squares, warp
from ..registry import Registry

# Index of the deformation drawn for each image: the authors pick one of three per sample.
X_SLANT, Y_SLANT, ROTATION = 0, 1, 2


@dataclass(frozen=True)
class AffineAugment:
    """A random affine transformation family; all strengths zero is the identity.

    stretch:   x and y scale factors drawn independently from U(1 - stretch, 1 + stretch)
    deform:    alpha ~ U(-deform, deform), used as x-slant, y-slant or rotation (radians),
               one of the three chosen uniformly per image
    translate: shift in pixels, drawn from U(-translate, translate) for x and y
    hflip:     mirror horizontally with probability 1/2 (never for digits)
    cutout:    side in pixels of a square set to zero after the warp, centred anywhere in the
               image (DeVries & Taylor 2017); 0 = none. A view that loses a stroke must still
               agree with the others, which links variants of a class (a seven with and without
               its crossbar) that the affine warps alone keep apart.
    canvas:    zero padding in pixels added on every side before the warp, so that large
               translations move the image on a larger canvas instead of out of the frame (the
               authors' "padded canvas"); the output is larger by 2 * canvas. Meant for the
               fractional max-pooling nets, which pad every input to their field anyway.
    colour:    strength c of a colour distortion after the warp: every channel of every image
               scaled by U(1 - c, 1 + c), then a brightness shift U(-c/2, c/2), clipped to [0, 1]
               (the authors used colour distortion on CIFAR-10).
    padding:   what a warp shows outside the image: "zeros" (black) or "reflection" (the image
               mirrored at its edges, for images where dark areas carry the class: a black band
               shifted into a solar cell looks like a defect).
    """

    stretch: float = 0.0
    deform: float = 0.0
    translate: float = 0.0
    hflip: bool = False
    cutout: int = 0
    canvas: int = 0
    colour: float = 0.0
    padding: str = "zeros"

    def __post_init__(self):
        for name in ("stretch", "deform", "translate", "cutout", "canvas", "colour"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"transform {name} must be a finite number >= 0, got {value!r}")
        if self.stretch >= 1:
            raise ValueError(f"transform stretch must be below 1 (a factor 1 - stretch > 0), got {self.stretch}")

    @property
    def is_identity(self) -> bool:
        return not (self.stretch or self.deform or self.translate or self.hflip or self.cutout or self.canvas
                    or self.colour)

    def sample(self, batch: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Draws the parameters of ``batch`` independent transformations (on the CPU generator)."""
        def uniform(*shape):
            return torch.rand(*shape, generator=generator) * 2 - 1

        params = {
            "scale": 1 + self.stretch * uniform(batch, 2),
            "alpha": self.deform * uniform(batch),
            "kind": torch.randint(0, 3, (batch,), generator=generator),
            "shift": self.translate * uniform(batch, 2),
            "flip": (torch.rand(batch, generator=generator) < 0.5) if self.hflip
                    else torch.zeros(batch, dtype=torch.bool),
        }
        if self.cutout:  # drawn only when used, so the other transforms' random streams are unchanged
            params["cutout_centre"] = torch.rand(batch, 2, generator=generator)  # fractions of (W, H)
        if self.colour:
            params["colour_gain"] = 1 + self.colour * uniform(batch, 3)      # per channel (first C used)
            params["colour_shift"] = self.colour / 2 * uniform(batch, 1)
        return {k: to_device(v, device) for k, v in params.items()}

    @staticmethod
    def matrices(params: dict[str, torch.Tensor], height: int, width: int) -> torch.Tensor:
        """(B, 2, 3) pixel-space matrices mapping source to destination, about the image centre."""
        scale, alpha, kind = params["scale"], params["alpha"], params["kind"]
        one, zero = torch.ones_like(alpha), torch.zeros_like(alpha)
        cos, sin = torch.cos(alpha), torch.sin(alpha)
        slant = torch.where(kind == ROTATION, zero, alpha)
        # Linear part L = D @ S: D is the chosen deformation, S the stretch (and flip).
        d00 = torch.where(kind == ROTATION, cos, one)
        d01 = torch.where(kind == ROTATION, -sin, torch.where(kind == X_SLANT, slant, zero))
        d10 = torch.where(kind == ROTATION, sin, torch.where(kind == Y_SLANT, slant, zero))
        d11 = d00
        sx = scale[:, 0] * torch.where(params["flip"], -one, one)
        sy = scale[:, 1]
        linear = torch.stack([torch.stack([d00 * sx, d01 * sy], -1),
                              torch.stack([d10 * sx, d11 * sy], -1)], -2)
        return about_centre(linear, params["shift"].to(alpha.dtype), height, width)

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Warps ``images`` (B, C, H, W), float, with previously sampled ``params``."""
        if self.is_identity:
            return images
        if self.canvas:
            images = torch.nn.functional.pad(images, (self.canvas,) * 4)
        height, width = images.shape[-2:]
        warped = warp(images, self.matrices(params, height, width), self.padding)
        if self.cutout:
            warped = warped * outside_squares(params["cutout_centre"], self.cutout / 2, height, width).to(warped.dtype)
        if self.colour:
            channels = warped.shape[1]
            gain = params["colour_gain"][:, :channels].to(warped.dtype).view(-1, channels, 1, 1)
            shift = params["colour_shift"].to(warped.dtype).view(-1, 1, 1, 1)
            warped = (warped * gain + shift).clamp(0, 1)
        return warped

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Samples fresh parameters for every image and applies them."""
        if self.is_identity:
            return images
        return self.apply(images, self.sample(images.shape[0], generator, images.device))

    def to_dict(self) -> dict:
        return asdict(self)


TRANSFORMS: Registry[AffineAugment] = Registry("transform")
TRANSFORMS.register("none")(AffineAugment())
# The authors' transformation for digits: stretch +-20%, one of x-slant / y-slant / rotation
# with alpha ~ U(-0.2, 0.2), and a small translation ("jiggle") of up to 2 pixels.
TRANSFORMS.register("digits")(AffineAugment(stretch=0.2, deform=0.2, translate=2.0))
# Weak transformations: a random crop (translation on a zero-padded canvas), with and without
# a horizontal flip (the flip is for natural images, never digits).
# The digit transformation plus a 10-pixel cutout square (see AffineAugment.cutout). Measured
# harmful on MNIST with 100 labels (benchmarks/tuning.md): kept as an option, not a default.
TRANSFORMS.register("digits-cutout")(AffineAugment(stretch=0.2, deform=0.2, translate=2.0, cutout=10))
TRANSFORMS.register("crop")(AffineAugment(translate=2.0))
TRANSFORMS.register("crop-flip")(AffineAugment(translate=2.0, hflip=True))
# crop-flip plus a mild stretch and slant/rotation (half the digits' strength): more variety for
# labelled images that are learnt by heart, while a weak view stays close to its image.
TRANSFORMS.register("crop-flip-warp")(AffineAugment(stretch=0.1, deform=0.1, translate=2.0, hflip=True))
# The authors' transformations for the colour sets (method.md): stretch, slant/rotation,
# translation by up to 16 px on a canvas padded by 16 px, flips except on digits, and colour
# distortion on CIFAR-10. For the fractional max-pooling nets of the paper presets.
_PAPER = dict(stretch=0.2, deform=0.2, translate=16.0, canvas=16)
TRANSFORMS.register("paper-cifar10")(AffineAugment(**_PAPER, hflip=True, colour=0.2))
TRANSFORMS.register("paper-natural")(AffineAugment(**_PAPER, hflip=True))
TRANSFORMS.register("paper-digits")(AffineAugment(**_PAPER))
# For ImageNet-size images (128 px): mild stretch and rotation, shifts of up to 16 px (an eighth of the side,
# as the crops of the 32-pixel benchmarks' 4 px), flips; the recipe for photos and scans takes it (without the
# flips under --no-flip): the 2-pixel shifts of crop-flip hardly move a 128-pixel image.
TRANSFORMS.register("imagenet")(AffineAugment(stretch=0.1, deform=0.1, translate=16.0, hflip=True))
TRANSFORMS.register("imagenet-noflip")(AffineAugment(stretch=0.1, deform=0.1, translate=16.0))
# The same with the image mirrored at its edges rather than black bands where a shift uncovers it. Measured worse
# on ELPV's validation split than the black bands (benchmarks/tuning.md): kept as an option, not a default.
TRANSFORMS.register("photo")(AffineAugment(stretch=0.1, deform=0.1, translate=16.0, hflip=True, padding="reflection"))
