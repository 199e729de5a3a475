"""The geometry the random transformations and RandAugment share: a linear map applied about the
image centre, the bilinear warp (zero or mirrored padding), and the square a cutout erases."""
from __future__ import annotations

import torch
from kornia.geometry.transform import warp_affine


def about_centre(linear: torch.Tensor, shift: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 2, 3) pixel-space matrices applying ``linear`` (B, 2, 2) about the image centre, then
    ``shift`` (B, 2) pixels."""
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], device=linear.device, dtype=linear.dtype)
    offset = centre - linear @ centre + shift
    return torch.cat([linear, offset.view(linear.shape[0], 2, 1)], dim=-1)


def warp(images: torch.Tensor, matrix: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """``images`` (B, C, H, W) warped by ``matrix`` (B, 2, 3): bilinear, black outside the image (``padding``
    "zeros"), or the image mirrored at its edges ("reflection")."""
    height, width = images.shape[-2:]
    return warp_affine(images, matrix.to(images.dtype), dsize=(height, width), mode="bilinear",
                       padding_mode=padding, align_corners=True)


def outside_squares(centre: torch.Tensor, half: torch.Tensor | float, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) mask: 0 inside each image's square (centre as fractions of (W, H), half its
    side in pixels), 1 elsewhere."""
    cx, cy = (centre[:, 0] * width).view(-1, 1, 1), (centre[:, 1] * height).view(-1, 1, 1)
    ys = torch.arange(height, device=centre.device).view(1, -1, 1) + 0.5
    xs = torch.arange(width, device=centre.device).view(1, 1, -1) + 0.5
    inside = ((ys - cy).abs() < half) & ((xs - cx).abs() < half)
    return (~inside).unsqueeze(1)
