"""Reader for SVHN's cropped-digits format: ``train_32x32.mat``, ``test_32x32.mat`` and the
optional ``extra_32x32.mat`` (MATLAB v5 files, read with scipy).

Each holds ``X``, 32 x 32 x 3 x N uint8 (height, width, channel, image), and ``y``, N x 1 labels
1..10 where 10 stands for the digit 0; stochreg maps 10 to 0 so that class k is digit k.
``--dataset svhn`` reads train and test; ``--dataset svhn-extra`` reads the same folder
(``data/svhn``) and adds the 531,131 extra images to the training set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
URL = "http://ufldl.stanford.edu/housenumbers/"


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 3 x 32 x 32 uint8, labels 0..9) from one SVHN .mat file."""
    from scipy.io import loadmat
    if not path.exists():
        raise DataError(f"missing data file {path}; download it from {URL}")
    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... for damaged files
        raise DataError(f"corrupt data file {path}: not a readable SVHN .mat file ({exc.__class__.__name__})") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"corrupt data file {path}: no 'X' and 'y' variables")
    images, labels = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if images.ndim != 4 or images.shape[2] != 3 or images.shape[3] != len(labels):
        raise DataError(f"corrupt data file {path}: X is {images.shape} and y has {len(labels)} labels, "
                        "expected H x W x 3 x N and N labels")
    if len(labels) and (labels.min() < 1 or labels.max() > 10):
        raise DataError(f"corrupt data file {path}: labels outside 1..10")
    return images.transpose(3, 2, 0, 1), np.where(labels == 10, 0, labels)


def read_svhn(folder: Path, extra: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder = Path(folder)
    train = read_mat(folder / FILES["train"])
    if extra:
        more = read_mat(folder / FILES["extra"])
        train = (np.concatenate([train[0], more[0]]), np.concatenate([train[1], more[1]]))
    return {"train": train, "test": read_mat(folder / FILES["test"])}
