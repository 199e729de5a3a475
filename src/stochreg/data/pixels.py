"""Checked conversion of decoded pixel and label arrays to what training uses (uint8, int64).

Every reader passes its arrays through here, so bad values fail the same way whatever the
format: NaN or infinite pixels, values outside 0..255, labels that are not integers.

    >>> as_uint8_images(np.array([[0.0, 0.5, 1.0]]), "x").tolist()
    [[0, 128, 255]]
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import DataError


def as_uint8_images(array: np.ndarray, source: str) -> np.ndarray:
    """uint8 as is; integers checked to lie in 0..255; floats checked for NaN/inf and taken as
    0..1 when they all lie there (scaled by 255), else as 0..255."""
    if array.dtype == np.uint8:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{source}: pixels of type {array.dtype} are not numbers")
    if array.size == 0:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError(f"{source}: {int((~np.isfinite(array)).sum())} NaN or infinite pixel values")
        if array.min() >= 0 and array.max() <= 1:
            array = array * 255.0
    low, high = array.min(), array.max()
    if low < 0 or high > 255:
        raise DataError(f"{source}: pixel values outside 0..255 (from {low} to {high}); scale them to 0..255, "
                        "or to floats in 0..1")
    return np.rint(array).astype(np.uint8)


def as_nchw_uint8(images: Any, what: str) -> torch.Tensor:
    """uint8 (N, C, H, W) from an array or tensor shaped (N, H, W), (N, H, W, C) or (N, C, H, W),
    uint8 or float (0..1 or 0..255)."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[1] not in (1, 3) and array.shape[-1] in (1, 3):
        array = array.transpose(0, 3, 1, 2)   # channels last, as PIL and most arrays hold images
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise DataError(f"{what}: expected images shaped (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 "
                        f"channels, got {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(as_uint8_images(array, what)))


def as_int64_labels(array: np.ndarray, source: str) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{source}: labels must be integers, got {array.dtype.name}")
    return array.astype(np.int64)
