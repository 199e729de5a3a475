"""Reading the user's image files (PNG, JPEG...) into the uint8 (N, C, H, W) tensors models take.

Folders are searched recursively for image files, in sorted order. Images are converted to the
model's channels (grayscale or RGB) and, when their size differs, resized to the model's input
size; an unreadable file is a clear error naming it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def find_images(paths: list[str | Path]) -> list[Path]:
    """The files named, and the image files inside the folders named (recursively, sorted)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                raise DataError(f"no image files (png, jpg, ...) in folder {path}")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"no such image file or folder: {path}")
    return found


def read_image(file: Path, shape: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """One image file as a uint8 (C, H, W) array for ``shape`` = (C, H, W), converted to its
    channels and resized (bilinear) when its size differs; and whether it was resized."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise DataError(f"cannot read image files for a model with {channels} channels")
    try:
        with Image.open(file) as image:
            image = image.convert(mode)
            resized = image.size != (width, height)
            if resized:
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {file}: {exc.__class__.__name__}") from None
    return (array[None] if channels == 1 else array.transpose(2, 0, 1)), resized


def read_images(files: list[Path], shape: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
    """uint8 tensor (N, C, H, W) for ``shape`` = (C, H, W), and how many images were resized."""
    arrays, resized = [], 0
    for file in files:
        array, was_resized = read_image(file, shape)
        arrays.append(array)
        resized += was_resized
    return torch.from_numpy(np.stack(arrays)), resized


def write_png(array: np.ndarray, path: str | Path) -> None:
    """Writes a uint8 (H, W) or (H, W, 3) array as a PNG."""
    from PIL import Image
    Image.fromarray(array).save(path)
