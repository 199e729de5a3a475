"""In-memory datasets: uint8 image tensors (N, C, H, W) and int64 labels, read from a data folder.

    >>> ds = load_dataset("mnist", "data")          # doctest: +SKIP
    >>> ds.train_images.shape, ds.train_images.dtype # doctest: +SKIP
    (torch.Size([60000, 1, 28, 28]), torch.uint8)
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import DataError, UsageError
from ..registry import Registry
from . import fetch as fetching
from .cifar import read_cifar
from .elpv import CLASS_NAMES as ELPV_CLASSES, read_elpv
from .idx import read_idx
from .norb import read_norb
from .svhn import read_svhn
from .images import read_images
from .folders import user_dataset_reader
from .listing import labels_of, left_out_note, listing_shape, load_listing
from .repeats import repeated_image_notes
from .streaming import FileImages
from .pixels import as_int64_labels, as_uint8_images


def label_names(class_names: list[str] | None, num_classes: int) -> list[str]:
    """What each class is called in output: the user's class names, or its index as text."""
    return class_names or [str(k) for k in range(num_classes)]


@dataclass
class Dataset:
    """A labelled train set (also the unlabelled pool) and a test set, held as tensors."""

    name: str
    train_images: torch.Tensor   # (N, C, H, W) uint8
    train_labels: torch.Tensor   # (N,) int64
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    is_digits: bool              # digits are never flipped horizontally
    class_names: list[str] | None = None   # for the user's own data; standard datasets use indices
    # the user's unlabelled image files left out as unreadable: (file, reason)
    left_out: list[tuple[Path, str]] = field(default_factory=list)
    # the user's training image files, in the order of train_images (None for built-in datasets)
    train_files: list[Path] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def label_names(self) -> list[str]:
        return label_names(self.class_names, self.num_classes)

    def __post_init__(self):
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise DataError(f"{self.name} {split} images must be uint8 (N, C, H, W), "
                                f"got {images.dtype} {tuple(images.shape)}")
            if len(images) != len(labels):
                raise DataError(f"{self.name} {split}: {len(images)} images but {len(labels)} labels")
            # -1 marks an unlabelled training image (the user's unlabelled folder)
            lowest = -1 if split == "train" else 0
            if len(labels) and (labels.min() < lowest or labels.max() >= self.num_classes):
                raise DataError(f"{self.name} {split}: labels outside 0..{self.num_classes - 1}")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DataError(f"{self.name}: train images {tuple(self.train_images.shape[1:])} and test "
                            f"images {tuple(self.test_images.shape[1:])} differ in size")


DATASETS: Registry[Callable[[Path], Dataset]] = Registry("dataset")


def _read_idx_splits(folder: Path, name: str, size: tuple[int, int] = (28, 28)) -> dict:
    """{"train": (images N x 1 x H x W, labels), "t10k": ...} from the four IDX files."""
    arrays = {}
    for filename in fetching.IDX_FILES:
        path = fetching.locate(folder, filename)
        if path is None:
            raise DataError(f"missing data file {folder / filename}; run: stochreg data fetch {name}")
        arrays[filename] = read_idx(path)
    splits = {}
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte.gz"], arrays[f"{split}-labels-idx1-ubyte.gz"]
        if images.ndim != 3:
            raise DataError(f"{name}: {split} image file holds a {images.ndim}-d array, expected (N, H, W)")
        if images.shape[1:] != size:
            raise DataError(f"{name}: {split} images are {images.shape[1]}x{images.shape[2]}, "
                            f"expected {size[0]}x{size[1]}")
        splits[split] = (images[:, None], labels)
    for split in splits:
        if splits[split][1].ndim != 1:
            raise DataError(f"{name}: {split} label file holds a {splits[split][1].ndim}-d array, expected (N,)")
    return splits


def _to_dataset(name: str, arrays: dict, classes: int, is_digits: bool, test_split: str = "test",
                class_names: list[str] | None = None) -> Dataset:
    """A Dataset from {"train": (images, labels), test_split: ...} numpy arrays; every reader's
    pixels and labels pass the same checks here."""
    tensors = {}
    for split, (images, labels) in arrays.items():
        # np.array copies: frombuffer arrays are read-only, torch wants writable memory
        tensors[split] = (torch.from_numpy(np.array(as_uint8_images(images, f"{name} {split} images"))),
                          torch.from_numpy(as_int64_labels(labels, f"{name} {split} labels")))
    return Dataset(name, *tensors["train"], *tensors[test_split], classes, is_digits, class_names)


def _arrays_dataset(name: str, classes: int, is_digits: bool, read, test_split: str = "test",
                    class_names: list[str] | None = None) -> Callable[[Path], Dataset]:
    """A loader of folder -> Dataset from a reader giving numpy arrays per split; it says whether
    the dataset holds digits before it is loaded (``loader.is_digits``)."""
    def loader(folder: Path) -> Dataset:
        return _to_dataset(name, read(folder), classes, is_digits, test_split, class_names)
    loader.is_digits = is_digits
    return loader


def is_digit_dataset(name: str) -> bool:
    """Whether dataset ``name`` holds digits, known without loading it: a built-in digit set; the
    user's own images (folder:, csv:, arrays) are not."""
    return name in DATASETS and getattr(DATASETS.get(name), "is_digits", False)


def check_dataset_name(name: str) -> None:
    """A registered dataset, ``folder:ROOT`` or ``csv:FILE``; else a UsageError listing them."""
    if user_dataset_reader(name) is None and name != "arrays" and name not in DATASETS:   # arrays: from api.fit
        where = Path(name).expanduser()
        if where.is_dir() or where.suffix.lower() in (".csv", ".zip"):
            flag = "--dataset csv:" if where.suffix.lower() == ".csv" else "--data "
            raise UsageError(f"--dataset {name}: no built-in dataset of that name; for your own images give "
                             f"{flag}{name}")
        DATASETS.get(name)


DATASETS.register("mnist")(_arrays_dataset("mnist", 10, True, lambda f: _read_idx_splits(f, "mnist"), "t10k"))
DATASETS.register("fashion-mnist")(_arrays_dataset(
    "fashion-mnist", 10, False, lambda f: _read_idx_splits(f, "fashion-mnist"), "t10k"))


DATASETS.register("cifar10")(_arrays_dataset("cifar10", 10, False, lambda f: read_cifar(f, "cifar10")))
DATASETS.register("cifar100")(_arrays_dataset("cifar100", 100, False, lambda f: read_cifar(f, "cifar100")))
# House numbers are digits: never flipped horizontally.
DATASETS.register("svhn")(_arrays_dataset("svhn", 10, True, lambda f: read_svhn(f, extra=False)))
DATASETS.register("svhn-extra")(_arrays_dataset("svhn-extra", 10, True, lambda f: read_svhn(f, extra=True)))
# Toys, not digits: a horizontal mirror keeps the class. Images are the 2 x 96 x 96 stereo pairs.
DATASETS.register("norb")(_arrays_dataset("norb", 5, False, read_norb))
# Solar cells, functional or defective: real inspection images, larger than the benchmarks' and unbalanced.
DATASETS.register("elpv")(_arrays_dataset("elpv", 2, False, read_elpv, class_names=ELPV_CLASSES))


def load_dataset(name: str, data_dir: str | os.PathLike = "data", fetch_missing: bool = True,
                 log: Callable[[str], None] = print, stream: bool = False, image_size: int = 0,
                 channels: int = 0, holdout: int = 0, seed: int = 0) -> Dataset:
    """Loads dataset ``name`` from ``data_dir/name``, fetching it first into an empty folder;
    ``folder:ROOT`` and ``csv:FILE`` read the user's own images (folders.py), resized to
    ``image_size`` and converted to ``channels`` when given, the training images left on disk
    with ``stream``; ``holdout`` labelled images of each class (chosen with ``seed``) become the
    test set of data that has none."""
    user = user_dataset_reader(name, holdout, seed)
    if user is not None:
        listing, left_out = user[1](log), []
        shape, classes, listing = listing_shape(name, listing, image_size, channels, log, stream, left_out)
        if not stream:
            arrays, classes, listing = load_listing(name, listing, shape, left_out)
            for note in [left_out_note(left_out),
                         *repeated_image_notes(listing, {split: images for split, (images, _) in arrays.items()})]:
                if note:
                    log(note)
            return dataclasses.replace(_to_dataset(name, arrays, len(classes), False, class_names=classes),
                                       left_out=left_out, train_files=[file for file, _ in listing["train"]])
        # Streaming: the training images stay files (a file damaged past its header stops the run when it
        # is met, naming it); the test set is decoded once, into memory.
        if left_out:
            log(left_out_note(left_out))
        test_images, _ = read_images([file for file, _ in listing["test"]], shape)
        images = FileImages([file for file, _ in listing["train"]], shape)
        return Dataset(name, images, torch.from_numpy(labels_of(listing["train"], classes)), test_images,
                       torch.from_numpy(labels_of(listing["test"], classes)), len(classes), False, classes, left_out,
                       list(images.files))
    if name == "arrays":
        raise DataError("this run was trained on arrays given from Python (stochreg.fit): its data is not on disk; "
                        "pass the arrays again from Python")
    loader = DATASETS.get(name)
    folder = fetching.dataset_folder(name, data_dir)
    source = fetching.SOURCES.get(name)
    # Fetch into an empty (or absent) folder; a folder with some files but not all is damaged,
    # and the loader names the missing file rather than silently replacing the user's data.
    if fetch_missing and source is not None and not fetching.has_any(folder):
        fetching.fetch(name, data_dir, log=log, read=loader)
    return loader(folder)
