"""Reading the user's image files (PNG, JPEG, HEIC...) into the uint8 (N, C, H, W) tensors models take.

Images are turned upright as their EXIF orientation says (phone photos), brought to 8 bits (16-bit
scans) and onto white (transparent cut-outs), converted to the model's channels (grayscale or RGB)
and, when their size differs, resized to the model's input size; unreadable or oversized files
are one clear error naming them (image_files.py finds the files).
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch

from ..errors import DataError
from .image_files import HEIF_SUFFIXES
from .pixels import as_uint8_images

# PIL's modes of one channel (with alpha for "LA"): 1, 8, 16 ("I;16" and its byte orders) and 32 bits a pixel
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# EXIF orientations 5-8 turn the picture by a quarter: width and height swap
_QUARTER_TURNS = (5, 6, 7, 8)
# the PIL mode each channel count is read in
CHANNEL_MODES = {1: "L", 3: "RGB"}
S, T = TypeVar("S"), TypeVar("T")


@contextlib.contextmanager
def open_image(file: Path) -> Iterator["PIL.Image.Image"]:
    """PIL's image of ``file``; a file that is no image, unreadable or too large is a DataError."""
    from PIL import Image, UnidentifiedImageError

    if Path(file).suffix.lower() in HEIF_SUFFIXES:
        register_heif_reader(file)
    try:
        with Image.open(file) as image:
            yield image
    except Image.DecompressionBombError:
        raise DataError(f"image {file} is too large to read safely (over {Image.MAX_IMAGE_PIXELS * 2:,} pixels); "
                        "shrink it or leave it out") from None
    except PermissionError:
        raise UnreadableImage(file, "permission denied") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UnreadableImage(file, why_unreadable(file, exc)) from None


class UnreadableImage(DataError):
    """An image file that cannot be decoded; ``reason`` says why in a few words (truncated, not an
    image, a format Pillow cannot read...)."""

    def __init__(self, file: Path | str = "", reason: str | None = None, message: str | None = None):
        # Without a reason, ``file`` (or ``message``) is the whole message: a DataLoader raises a worker's
        # error again in the training process from its message alone.
        if reason is None:
            super().__init__(message if message is not None else str(file))
            self.file, self.reason = None, ""
        else:
            super().__init__(f"cannot read image {file}: {reason}")
            self.file, self.reason = Path(file), reason


# The first bytes of files that are images in formats Pillow does not read, and what to call them.
_UNSUPPORTED_SIGNATURES = ((b"\xff\x0a", "JPEG XL"), (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
                           (b"8BPS", "Photoshop"), (b"II*\x00\x10\x00\x00\x00CR", "Canon raw"))
# The first bytes of the formats Pillow reads: such a file that fails to open is damaged
_READABLE_SIGNATURES = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
# ... and of files that are no images at all, and what they are.
_OTHER_SIGNATURES = ((b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive"), (b"<svg", "an SVG drawing"),
                     (b"<?xml", "an XML file"))


def why_unreadable(file: Path, exc: BaseException) -> str:
    """What is wrong with an image file Pillow failed on, in a few words for the user."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        try:
            with open(file, "rb") as f:
                head = f.read(512)
        except OSError as error:
            return f"cannot be opened ({error.strerror})"
        if not head:
            return "empty file"
        for signature, name in _UNSUPPORTED_SIGNATURES:
            if head.startswith(signature):
                return f"unsupported format ({name}): convert it to PNG or JPEG"
        if head.startswith(_READABLE_SIGNATURES):
            return "damaged or truncated (its header is incomplete)"
        if head[4:8] == b"ftyp":
            return "unsupported format (HEIC/AVIF or a video): convert it to PNG or JPEG"
        for signature, name in _OTHER_SIGNATURES:
            if head.lstrip().startswith(signature):
                return f"not an image ({name})"
        text = sum(32 <= byte < 127 or byte in b"\t\r\n" for byte in head) / len(head)
        return "not an image (text)" if text > 0.95 else "not an image, or a format Pillow cannot read"
    message = str(exc)
    if "truncated" in message.lower() or "early end" in message.lower():
        return "truncated (the file ends early)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot be opened ({exc.strerror})"
    return f"damaged ({message.splitlines()[0][:120]})" if message else f"damaged ({exc.__class__.__name__})"


@functools.cache
def _register_heif_opener() -> None:
    import pillow_heif
    pillow_heif.register_heif_opener()


def register_heif_reader(file: Path) -> None:
    """Lets Pillow open HEIC/HEIF files (iPhone photos) through pillow-heif; without it, a DataError
    for ``file`` says how to install it."""
    try:
        _register_heif_opener()
    except ImportError:
        raise DataError(f"cannot read image {file}: HEIC/HEIF files (iPhone photos) need pillow-heif: "
                        "pip install 'stochreg[heic]'") from None


def turned_a_quarter(image) -> bool:
    """Whether the image's EXIF orientation turns it by a quarter (width and height swap)."""
    try:
        return image.getexif().get(0x0112, 1) in _QUARTER_TURNS
    except Exception:   # a damaged EXIF block: read the pixels as stored
        return False


def read_image(file: Path, shape: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """One image file as a uint8 (C, H, W) array for ``shape`` = (C, H, W), converted to its
    channels and resized (bilinear) when its size differs; and whether it was resized."""
    with open_image(file) as image:
        try:
            # A JPEG decodes at 1/2, 1/4 or 1/8 of its size, at a fraction of the cost, when the model's
            # input is that much smaller (a phone photo for a 96-pixel model); asked for before the
            # pixels load, in the orientation the file stores them in. The resize then starts smaller.
            c, h, w = shape
            stored = (h, w) if turned_a_quarter(image) else (w, h)
            full_size = image.size
            if c in CHANNEL_MODES:
                image.draft(CHANNEL_MODES[c], stored)
            array, _ = image_array(image, shape, f"image {file}")
            return array, full_size != stored
        except (OSError, ValueError) as exc:   # a truncated file fails when its pixels are decoded
            raise UnreadableImage(file, why_unreadable(file, exc)) from None


def image_array(image, shape: tuple[int, int, int], source: str = "image") -> tuple[np.ndarray, bool]:
    """A PIL image as a uint8 (C, H, W) array for ``shape``: turned upright by its EXIF orientation,
    converted to 8 bits and the channels, resized (bilinear) when its size differs; and whether it was
    resized. ``source`` names the image in errors."""
    from PIL import Image, ImageOps

    channels, height, width = shape
    mode = CHANNEL_MODES.get(channels)
    if mode is None:
        raise DataError(f"cannot read images for a model with {channels} channels")
    image = on_white(eight_bit(ImageOps.exif_transpose(image), source)).convert(mode)
    resized = image.size != (width, height)
    if resized:
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return (array[None] if channels == 1 else array.transpose(2, 0, 1)), resized


def eight_bit(image, source: str = "image"):
    """A 16- or 32-bit grayscale image (scans, microscopy, depth maps) as 8 bits a pixel, by the full range
    of 16 bits (0..65535 to 0..255, as torchvision's and scikit-image's conversions do); a float one by the
    rule arrays follow (0..1 scaled, else 0..255; ``source`` names it in the error for other values). PIL's
    own conversion clips such pixels at 255 instead, which turns a 16-bit scan almost white. Other images
    are returned as they are."""
    from PIL import Image

    if image.mode == "F":
        return Image.fromarray(as_uint8_images(np.asarray(image, dtype=np.float64), source))
    if image.mode.startswith("I"):
        pixels = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
        return Image.fromarray(np.rint(pixels / 257).astype(np.uint8))
    return image


def on_white(image):
    """An image with transparency (a product shot cut out as PNG, a logo) as a viewer shows it on a white
    page; other images as they are. Dropping the alpha channel instead, as a plain conversion does, shows
    whatever colour the file stores under its transparent pixels: black in some files, the cut-out
    background in others, so that the same object would look different by the tool that saved it."""
    from PIL import Image

    if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
        return image
    image = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)


# How many unreadable files one error names; the rest are counted.
NAMED_FAILURES = 5


def read_each(items: list[S], read: Callable[[S], T]) -> list[T]:
    """``read(item)`` for every item (an image file, or a PIL image). Files that cannot be read do
    not stop the others: one DataError names them all (the first few, and how many more), so that a
    folder of thousands of photos with several damaged ones is mended in one go, not one rerun per file."""
    results, failures = try_each(items, read)
    if failures:
        raise unreadable_error(failures)
    return [result for _, result in results]


def try_each(items: list[S], read: Callable[[S], T]) -> tuple[list[tuple[S, T]], list[str]]:
    """(item, ``read(item)``) for the items that read, and the errors of those that do not."""
    results, failures = [], []
    for item in items:
        try:
            results.append((item, read(item)))
        except DataError as exc:
            failures.append(str(exc))
    return results, failures


def unreadable_error(failures: list[str], after: str = "", named: int = NAMED_FAILURES) -> DataError:
    """One error for the files that could not be read: the first ``named`` named, the rest counted;
    ``after`` is appended (what was done with the others)."""
    if len(failures) == 1:
        return DataError(failures[0] + after)
    more = len(failures) - named
    named = [failure.removeprefix("cannot read image ") for failure in failures[:named]]
    return DataError(f"{len(failures)} image files cannot be read (mend or remove them): " + "; ".join(named)
                     + (f"; and {more} more" if more > 0 else "") + after)


def read_images(files: list[Path], shape: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
    """uint8 tensor (N, C, H, W) for ``shape`` = (C, H, W), and how many images were resized."""
    return stacked(read_each(files, lambda file: read_image(file, shape)), shape)


def stacked(read: list[tuple[np.ndarray, bool]], shape: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
    """:func:`read_image`'s results as one uint8 tensor (N, C, H, W), and how many were resized."""
    if not read:
        return torch.empty((0, *shape), dtype=torch.uint8), 0
    return torch.from_numpy(np.stack([array for array, _ in read])), sum(was_resized for _, was_resized in read)


def write_png(array: np.ndarray, path: str | Path) -> None:
    """Writes a uint8 (H, W) or (H, W, 3) array as a PNG."""
    from PIL import Image
    Image.fromarray(array).save(path)


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float in [0, 1] (black, the zero padding of warps, stays 0)."""
    return images.float().div_(255)
