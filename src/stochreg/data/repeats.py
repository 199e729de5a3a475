"""Images that appear twice in a person's own folders or arrays, found by their pixels at the model's
input size.

Two kinds are worth a note before training, because nothing else would show them: a test image that
is also a training image (a copy, or the same photo saved twice), which makes the test estimate
count images the model learnt from; and one image labelled as two classes, where one label is
wrong. The same image labelled and unlabelled, or twice in one class, changes nothing and is not
mentioned.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

Listing = list[tuple["Path | str", "str | None"]]   # (file or name, class or None), as notes name them


def _digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()


def repeated_image_notes(listing: dict[str, Listing], images: dict[str, np.ndarray]) -> list[str]:
    """Notes on test images that are training images and on images labelled as two classes;
    ``listing`` holds each split's (file, class or None), ``images`` its decoded uint8 images."""
    notes = []
    seen: dict[bytes, Path | str] = {}                    # every training image, by its pixels
    labelled: dict[bytes, tuple[Path | str, str]] = {}    # the first labelled one, with its class
    conflicts = []
    for (file, label), image in zip(listing["train"], images["train"]):
        digest = _digest(image)
        seen.setdefault(digest, file)
        if label is None:
            continue
        first = labelled.setdefault(digest, (file, label))
        if first[1] != label:
            conflicts.append((first, (file, label)))
    if conflicts:
        (file_a, class_a), (file_b, class_b) = conflicts[0]
        notes.append(f"note: labelled images of two classes hold the same pixels ({len(conflicts)} in all; "
                     f"{file_a} in {class_a}, {file_b} in {class_b}): one label of each pair is wrong")
    leaked = [(file, seen[digest]) for (file, _), digest in
              ((item, _digest(image)) for item, image in zip(listing["test"], images["test"])) if digest in seen]
    if leaked:
        test_file, train_file = leaked[0]
        notes.append(f"note: test images that are also training images: {len(leaked)} of {len(listing['test'])} "
                     f"(the same pixels at the model's input size; {test_file} and {train_file}), so the test estimate "
                     "counts images the model learnt from; remove them from one side for an honest estimate")
    return notes


def repeated_array_notes(train_images: np.ndarray, train_labels: Sequence[int], test_images: np.ndarray,
                         test_labels: Sequence[int], label_names: list[str]) -> list[str]:
    """The same notes for images given as arrays (label -1: unlabelled), naming images by their index
    ("training image 12") and classes by ``label_names`` (the indices as text: "class 3")."""
    def named(k: int) -> str:
        name = label_names[k]
        return f"class {name}" if name == str(k) else name

    listing = {"train": [(f"training image {i}", None if k < 0 else named(k)) for i, k in enumerate(train_labels)],
               "test": [(f"test image {i}", named(k)) for i, k in enumerate(test_labels)]}
    return repeated_image_notes(listing, {"train": train_images, "test": test_images})
