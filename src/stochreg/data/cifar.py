"""Reader for CIFAR-10 and CIFAR-100 in their "python version" layout (pickled batches).

CIFAR-10 (``cifar-10-batches-py/``): ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``,
each a pickled dict with ``b"data"`` (N x 3072 uint8: 1024 red, 1024 green, 1024 blue values,
rows of 32) and ``b"labels"``. CIFAR-100 (``cifar-100-python/``): ``train`` and ``test`` with
``b"data"`` and ``b"fine_labels"`` (100 classes; the 20 coarse labels are not used).

The batches are pickles, and unpickling can run code. They are read with an unpickler that
accepts only what the real files contain (dicts, lists, bytes, numbers and numpy arrays) and
refuses anything else before it runs.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError

CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR100_FILES = {"train": ["train"], "test": ["test"]}
URLS = {"cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"}
SUBFOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}

# What a genuine CIFAR pickle references: numpy's array reconstruction (numpy 1 and 2 module
# names) and, for files written by Python 3 with protocol 2, the codec that rebuilds bytes.
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> dict:
    """One pickled batch as a dict with str keys; anything odd is a DataError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"missing data file {path}") from None
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"corrupt data file {path}: {exc}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DataError(f"corrupt data file {path}: not a CIFAR batch ({exc.__class__.__name__})") from None
    if not isinstance(batch, dict):
        raise DataError(f"corrupt data file {path}: not a CIFAR batch (a {type(batch).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _folder(root: Path, name: str) -> Path:
    """The folder holding the batches: ``root`` itself or the archive's own subfolder in it."""
    inner = root / SUBFOLDERS[name]
    return inner if inner.is_dir() else root


def read_cifar(root: Path, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images N x 3 x 32 x 32 uint8, labels), "test": (...)} for cifar10 or cifar100."""
    folder = _folder(Path(root), name)
    files, label_key = (CIFAR10_FILES, "labels") if name == "cifar10" else (CIFAR100_FILES, "fine_labels")
    if not (folder / files["test"][0]).exists():
        raise DataError(f"missing data file {folder / files['test'][0]}; download {URLS[name]} and extract it "
                        f"into {root}")
    out = {}
    for split, names in files.items():
        images, labels = [], []
        for file in names:
            batch = read_batch(folder / file)
            if "data" not in batch or label_key not in batch:
                raise DataError(f"corrupt data file {folder / file}: no '{label_key}' or 'data' entry")
            data, batch_labels = np.asarray(batch["data"]), np.asarray(batch[label_key])
            if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(batch_labels):
                raise DataError(f"corrupt data file {folder / file}: data {data.shape} and {len(batch_labels)} "
                                "labels, expected N x 3072 and N labels")
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(batch_labels)
        out[split] = (np.concatenate(images), np.concatenate(labels))
    return out
