"""The user's own images: a folder tree of classes (ImageNet layout) or a CSV of path,label rows.

``--dataset folder:ROOT`` reads

    ROOT/train/CLASS/*.png|jpg|...    labelled training images, one subfolder per class
    ROOT/val/CLASS/...  or  ROOT/test/CLASS/...   the test set (ImageNet's layout uses val/)
    ROOT/unlabelled/...               optional: images without labels, any nesting

``--dataset csv:FILE`` reads rows ``path,label[,split]`` (paths relative to the CSV's folder; an
optional header row; an empty label marks an unlabelled image; split is ``train`` (the default)
or ``test``).

Classes are the sorted class names. The channels (1 for grayscale, 3 for colour) and the image
size (the most common one; other images are resized to it) are detected from the training
images. Unlabelled images are part of the training set with label -1: they join the unlabelled
pool and are never picked as labelled. Errors name the file or folder at fault: an unreadable
image, an empty class, grayscale and colour images mixed, a test class the training set lacks.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..images import IMAGE_SUFFIXES, read_images

UNLABELLED = -1


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_tree(folder: Path) -> list[tuple[Path, str]]:
    """(image, class name) for every image under ``folder/CLASS/``; an empty class is an error."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder} holds no class subfolders (expected {folder}/CLASS/image files)")
    items = []
    for class_dir in classes:
        images = _images_in(class_dir)
        if not images:
            raise DataError(f"class folder {class_dir} holds no image files (png, jpg, ...)")
        items += [(image, class_dir.name) for image in images]
    return items


def _first_existing(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def read_folder_tree(root: Path) -> dict[str, list[tuple[Path, str | None]]]:
    """{"train": [(file, class or None)], "test": [...]} from ROOT/train, ROOT/val|test, ROOT/unlabelled."""
    if not root.is_dir():
        raise DataError(f"no such folder: {root}")
    train = _first_existing(root, ("train",))
    test = _first_existing(root, ("val", "test"))
    if train is None or test is None:
        raise DataError(f"{root} must hold train/CLASS/... and val/CLASS/... (or test/CLASS/...) folders")
    items = {"train": list(_class_tree(train)), "test": list(_class_tree(test))}
    unlabelled = _first_existing(root, ("unlabelled", "unlabeled"))
    if unlabelled is not None:
        files = _images_in(unlabelled)
        if not files:
            raise DataError(f"folder {unlabelled} holds no image files (png, jpg, ...)")
        items["train"] += [(file, None) for file in files]
    return items


def read_csv_listing(path: Path) -> dict[str, list[tuple[Path, str | None]]]:
    """{"train": [(file, class or None)], "test": [...]} from rows path,label[,split]."""
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    items: dict[str, list] = {"train": [], "test": []}
    for number, row in enumerate(rows, start=1):
        if len(row) not in (2, 3):
            raise DataError(f"{path}, row {number}: expected path,label[,split], got {len(row)} columns")
        file, label = (path.parent / row[0].strip()), row[1].strip()
        split = row[2].strip().lower() if len(row) == 3 and row[2].strip() else "train"
        if split not in items:
            raise DataError(f"{path}, row {number}: split must be train or test, got {split!r}")
        if not file.is_file():
            raise DataError(f"{path}, row {number}: no such image file {file}")
        if split == "test" and not label:
            raise DataError(f"{path}, row {number}: a test image needs a label")
        items[split].append((file, label or None))
    if not items["test"]:
        raise DataError(f"{path} lists no test images (rows with split 'test')")
    return items


def detect_shape(files: list[Path], check_channels: bool = True) -> tuple[tuple[int, int, int], int]:
    """((C, H, W), how many differ from the most common size), from the files' headers only.

    Grayscale and colour images mixed in one dataset are an error (unless ``check_channels`` is
    off because --channels converts them all): the network takes one kind.
    """
    from PIL import Image, UnidentifiedImageError

    sizes, kinds = Counter(), {}
    for file in files:
        try:
            with Image.open(file) as image:
                sizes[image.size] += 1
                kinds.setdefault(1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3, file)
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"cannot read image {file}: {exc.__class__.__name__}") from None
    if check_channels and len(kinds) > 1:
        raise DataError(f"grayscale and colour images are mixed: {kinds[1]} is grayscale, {kinds[3]} is colour; "
                        "convert them to one kind, or pass --channels 1 or 3")
    (width, height), count = sizes.most_common(1)[0]
    return (max(kinds), height, width), len(files) - count


def class_names(name: str, items: dict[str, list[tuple[Path, str | None]]]) -> list[str]:
    """The sorted class names of the labelled training images; every test class must be one."""
    classes = sorted({label for _, label in items["train"] if label is not None})
    if not classes:
        raise DataError(f"{name}: the training set has no labelled images")
    unknown = sorted({label for _, label in items["test"]} - set(classes))
    if unknown:
        raise DataError(f"{name}: test class {unknown[0]!r} has no labelled training images")
    return classes


def listing_shape(name: str, items: dict[str, list[tuple[Path, str | None]]], image_size: int = 0,
                  channels: int = 0, log: Callable[[str], None] = print) -> tuple[tuple[int, int, int], list[str]]:
    """The (C, H, W) every image is read as, and the class names. With both ``image_size`` and
    ``channels`` given no file is opened here (a million ImageNet headers take a while)."""
    classes = class_names(name, items)
    if image_size and channels:
        return (channels, image_size, image_size), classes
    (c, h, w), odd = detect_shape([file for split in items.values() for file, _ in split], check_channels=not channels)
    if image_size:
        h = w = image_size
    elif odd:
        log(f"{name}: {odd} images resized to {w}x{h}, the most common size")
    return (channels or c, h, w), classes


def labels_of(listing: list[tuple[Path, str | None]], classes: list[str]) -> np.ndarray:
    index = {c: k for k, c in enumerate(classes)}
    return np.array([UNLABELLED if label is None else index[label] for _, label in listing], dtype=np.int64)


def load_listing(name: str, items: dict[str, list[tuple[Path, str | None]]],
                 shape: tuple[int, int, int]) -> tuple[dict, list[str]]:
    """Decodes every image: ({"train": (images, labels), "test": ...}, class names)."""
    classes = class_names(name, items)
    out = {}
    for split, listing in items.items():
        images, _ = read_images([file for file, _ in listing], shape)
        out[split] = (images.numpy(), labels_of(listing, classes))
    return out, classes


def user_dataset_reader(spec: str) -> tuple[str, Callable[[], dict[str, list]]] | None:
    """For ``folder:ROOT`` or ``csv:FILE``, (display name, function listing the files); else None."""
    kind, _, where = spec.partition(":")
    if kind == "folder" and where:
        return spec, lambda: read_folder_tree(Path(where).expanduser())
    if kind == "csv" and where:
        return spec, lambda: read_csv_listing(Path(where).expanduser())
    return None

