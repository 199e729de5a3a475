"""Reading a listing of the user's image files ({"train": [(file, class or None)], "test": [...]}, as
folders.py finds them): which files can be read (an unlabelled one that cannot is left out, a labelled
or test one is an error), the channels and size every image is read at, detected from the files'
headers, and their pixels."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from ..errors import DataError
from .images import GRAYSCALE_MODES, UnreadableImage, open_image, read_each, read_image, stacked, \
    turned_a_quarter, unreadable_error

UNLABELLED = -1
T = TypeVar("T")


def images_word(count: int) -> str:
    """"image" or "images", to follow ``count`` in a note."""
    return "image" if count == 1 else "images"


Listing = dict[str, list[tuple[Path, str | None]]]


def read_listing(items: Listing, read: Callable[[Path], T], left_out: list[tuple[Path, str]]) \
        -> tuple[Listing, dict[str, list[T]]]:
    """``read(file)`` for every file of the listing: (the listing without the unlabelled images that cannot
    be read, each split's results in its order). The unlabelled images that cannot be read are appended
    to ``left_out`` as (file, reason): one damaged photo among thousands stops no run. A labelled or test
    image that cannot be read is an error, naming every such file with its reason, since each counts."""
    kept: Listing = {split: [] for split in items}
    results: dict[str, list[T]] = {split: [] for split in items}
    fatal = []
    for split, listing in items.items():
        for file, label in listing:
            try:
                results[split].append(read(file))
                kept[split].append((file, label))
            except UnreadableImage as exc:
                if split == "train" and label is None:
                    left_out.append((exc.file, exc.reason))
                else:
                    fatal.append(str(exc))
            except DataError as exc:
                fatal.append(str(exc))
    if fatal:
        raise unreadable_error(fatal, " (each labelled and test image counts: unreadable unlabelled ones are "
                                      "left out instead)", named=len(fatal))
    return kept, results


def left_out_note(left_out: list[tuple[Path, str]], named: int = 3) -> str | None:
    """The note on the unlabelled images left out because they cannot be read; None when there are none."""
    if not left_out:
        return None
    first = "; ".join(f"{file.name}: {reason}" for file, reason in left_out[:named])
    more = f"; and {len(left_out) - named} more" if len(left_out) > named else ""
    return (f"note: {len(left_out)} unlabelled {images_word(len(left_out))} cannot be read and "
            f"{'was' if len(left_out) == 1 else 'were'} left out ({first}{more}); the run folder's "
            f"{UNREADABLE_LIST} lists {'it' if len(left_out) == 1 else 'them all'}")


# The run folder's list of the unlabelled images left out as unreadable (path,reason rows)
UNREADABLE_LIST = "unreadable.csv"


def detect_shape(files: list[Path], log: Callable[[str], None] = print,
                 headers: list[tuple[tuple[int, int], int]] | None = None) -> tuple[tuple[int, int, int], int, int]:
    """((C, H, W), how many differ from the size read at (size_to_read), how many of them lie the other way:
    portrait among landscape or the reverse), from the files' headers only (``headers``: read already).

    Grayscale and colour images mixed in one dataset are all read as colour (the network takes
    one kind), with a note saying how many grayscale images are converted.
    """
    if headers is None:
        headers = read_each(files, image_header)
    sizes, kinds = Counter(size for size, _ in headers), Counter(kind for _, kind in headers)
    if len(kinds) > 1:
        log(f"note: {kinds[1]} grayscale {images_word(kinds[1])} among {kinds[3]} colour "
            f"{'one' if kinds[3] == 1 else 'ones'}: all are read as colour")
    (width, height), count = size_to_read(sizes)
    turned = sum(n for size, n in sizes.items() if orientation(size) * orientation((width, height)) == -1)
    return (max(kinds), height, width), len(files) - count, turned


def image_header(file: Path) -> tuple[tuple[int, int], int]:
    """An image file's (width, height) upright and its channels (1 or 3), from its header."""
    with open_image(file) as image:
        width, height = image.size
        upright = (height, width) if turned_a_quarter(image) else (width, height)
        return upright, 1 if image.mode in GRAYSCALE_MODES else 3


def orientation(size: tuple[int, int]) -> int:
    """1 for a landscape (width, height), -1 for a portrait one, 0 for a square."""
    width, height = size
    return (width > height) - (width < height)


def size_to_read(sizes: Counter) -> tuple[tuple[int, int], int]:
    """The (width, height) images of these sizes are read at, and how many have it: the most common size
    among the images of the most common orientation. Photos from two landscape cameras and one portrait
    size are read landscape even when the portrait size is the single most common one, so that the fewer
    images are squeezed; ties between orientations go to the most common size's."""
    by_orientation = Counter()
    for size, count in sizes.items():
        by_orientation[orientation(size)] += count
    first = orientation(sizes.most_common(1)[0][0])
    kept = max(by_orientation, key=lambda way: (by_orientation[way], way == first))
    return Counter({size: n for size, n in sizes.items() if orientation(size) == kept}).most_common(1)[0]


def class_names(name: str, items: dict[str, list[tuple[Path, str | None]]]) -> list[str]:
    """The sorted class names of the labelled training images; every test class must be one."""
    classes = sorted({label for _, label in items["train"] if label is not None})
    if not classes:
        raise DataError(f"{name}: the training set has no labelled images")
    if len(classes) < 2:
        raise DataError(f"{name}: only one class ({classes[0]!r}); a classifier needs at least 2 class folders")
    unknown = sorted({label for _, label in items["test"]} - set(classes))
    if unknown:
        raise DataError(f"{name}: test class {unknown[0]!r} has no labelled training images")
    return classes


# Images held in memory as uint8 are kept under this many bytes when no --image-size is given:
# a third of a 24 GiB machine, leaving room for the network, its activations and the graph.
IN_MEMORY_BYTES = 8 * 2 ** 30
# Without --image-size, larger images are read with their longer side at this many pixels, keeping
# their aspect ratio. A step holds every view of its images at the training size: at a phone photo's
# 4032x3024 one activation of a step's views alone takes hundreds of GiB, on any machine. The recipe for
# photos and scans fine-tunes an ImageNet network at this size: on ELPV's 300-pixel solar cells 128 pixels
# erred less than 96 on validation, and 160 no less than 128 at 1.6 times the cost (benchmarks/DECISIONS.md,
# row read-size).
DEFAULT_MAX_SIDE = 128


def listing_shape(name: str, items: Listing, image_size: int = 0, channels: int = 0,
                  log: Callable[[str], None] = print, stream: bool = False,
                  left_out: list[tuple[Path, str]] | None = None) -> tuple[tuple[int, int, int], list[str], Listing]:
    """The (C, H, W) every image is read as, the class names, and the listing without the unlabelled
    images whose header cannot be read (added to ``left_out``). With both ``image_size`` and
    ``channels`` given no file is opened here (a million ImageNet headers take a while). Without
    ``image_size``, images that would not fit in IN_MEMORY_BYTES (unless streamed) are read smaller."""
    classes = class_names(name, items)
    if image_size and channels:
        return (channels, image_size, image_size), classes, items
    items, headers = read_listing(items, image_header, [] if left_out is None else left_out)
    files = [file for split in items.values() for file, _ in split]
    (c, h, w), odd, turned = detect_shape(files, log, [header for split in items for header in headers[split]])
    c = channels or c
    if image_size:
        return (c, image_size, image_size), classes, items
    kept, other = ("landscape", "portrait") if w > h else ("portrait", "landscape")
    if turned:
        log(f"note: {turned} of the {len(files)} images {'is' if turned == 1 else 'are'} {other} among {kept} ones, "
            f"the most common orientation: read at the most common {kept} size, they are squeezed to its shape; "
            "--image-size N reads every image at NxN, squeezing both kinds alike")
    if max(h, w) > DEFAULT_MAX_SIDE:
        scale = DEFAULT_MAX_SIDE / max(h, w)
        small_h, small_w = max(8, round(h * scale)), max(8, round(w * scale))
        log(f"{name}: images of {w}x{h} read at {small_w}x{small_h}: without --image-size the longer side is kept to "
            f"{DEFAULT_MAX_SIDE} pixels, as a step holds every view of its images at that size (--image-size "
            "chooses a square size)")
        (h, w), odd = (small_h, small_w), 0
    needed = len(files) * c * h * w
    if needed > IN_MEMORY_BYTES and not stream:
        factor = (IN_MEMORY_BYTES / needed) ** 0.5
        small_h, small_w = max(8, int(h * factor)), max(8, int(w * factor))
        log(f"{name}: {len(files):,} images of {c}x{h}x{w} would take {needed / 2 ** 30:.1f} GiB in memory: read at "
            f"{c}x{small_h}x{small_w} ({len(files) * c * small_h * small_w / 2 ** 30:.1f} GiB); --image-size chooses "
            "the size, --stream keeps the images on disk")
        return (c, small_h, small_w), classes, items
    if odd:
        log(f"{name}: {odd} {images_word(odd)} resized to {w}x{h}, the most common "
            f"{kept if w != h else 'square'} size")
    return (c, h, w), classes, items


def labels_of(listing: list[tuple[Path, str | None]], classes: list[str]) -> np.ndarray:
    index = {c: k for k, c in enumerate(classes)}
    return np.array([UNLABELLED if label is None else index[label] for _, label in listing], dtype=np.int64)


def load_listing(name: str, items: Listing, shape: tuple[int, int, int],
                 left_out: list[tuple[Path, str]] | None = None) -> tuple[dict, list[str], Listing]:
    """Decodes every image: ({"train": (images, labels), "test": ...}, class names, the listing without
    the unlabelled images that cannot be decoded, which are added to ``left_out``)."""
    classes = class_names(name, items)
    items, decoded = read_listing(items, lambda file: read_image(file, shape), [] if left_out is None else left_out)
    out = {split: (stacked(decoded[split], shape)[0].numpy(), labels_of(listing, classes))
           for split, listing in items.items()}
    return out, classes, items
