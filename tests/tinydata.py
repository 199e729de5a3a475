"""A tiny dataset written in the real IDX on-disk format, for tests."""
from __future__ import annotations

import numpy as np

from stochreg.data.fetch import IDX_FILES
from stochreg.data.idx import write_idx


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images of 10 easy classes: class c is a bright bar at a class-specific place."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 4 + 2 * int(c)
        images[i, row:row + 3, 6:22] = 255
    return images, labels.astype(np.uint8)


def write_idx_dataset(folder, n_train: int = 200, n_test: int = 100, compressed: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    train, test = synthetic_digits(n_train, 0), synthetic_digits(n_test, 1)
    arrays = [train[0], train[1], test[0], test[1]]
    for name, array in zip(IDX_FILES, arrays):
        write_idx(folder / (name if compressed else name.removesuffix(".gz")), array)


