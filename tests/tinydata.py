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


def tiny_learner(data_dir, data=None, **overrides):
    """A Learner on the tiny IDX data of ``data_dir`` (20 labels, 10 labelled + 8 unlabelled images
    x 3 views per step, the smallest net, no ramp-up, no graph term: a method's own terms), or on
    ``data`` (a Dataset derived from it), with ``overrides``; returns (learner, data, labelled indices)."""
    import torch
    from stochreg.config import resolve_config
    from stochreg.data import labelled_split, load_dataset
    from stochreg.train import Learner
    settings = {"data_dir": str(data_dir), "labels": 20, "views": 3, "batch_labelled": 10, "batch_unlabelled": 8,
                "net": "compact-small", "rampup_iters": 0, "iters": 3, "lambda_graph": 0.0, **overrides}
    data = load_dataset("mnist", data_dir) if data is None else data
    labelled = labelled_split(data.train_labels, 20, 10, 0)
    return Learner(resolve_config(overrides=settings), data, labelled, torch.device("cpu")), data, labelled


def unbroken_and_resumed(data_dir, checkpoint, **overrides):
    """Two tiny learners after 5 steps: one unbroken, one resumed from ``checkpoint`` (a path it
    writes) after step 3; asserts that their weights are equal, and returns (unbroken, resumed)
    for the caller to compare the state it cares about."""
    import torch
    from stochreg.runtime.checkpoints import load_checkpoint, save_checkpoint
    learner, _, _ = tiny_learner(data_dir, **overrides)
    for step in (1, 2, 3):
        learner.step(step)
    save_checkpoint(checkpoint, {**learner.state_dict(), "step": 3})
    for step in (4, 5):
        learner.step(step)
    resumed, _, _ = tiny_learner(data_dir, **overrides)
    resumed.load_state_dict(load_checkpoint(checkpoint))
    for step in (4, 5):
        resumed.step(step)
    for name, value in learner.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    return learner, resumed


def write_cifar(folder, name: str = "cifar10", n_train: int = 100, n_test: int = 50, subfolder: bool = True) -> dict:
    """Tiny CIFAR-10/100 in the real "python version" layout: pickled dicts with bytes keys and an
    N x 3072 uint8 array (red, green, blue planes), as the published archives hold them.
    Returns the arrays written, as {"train": (images N x 3 x 32 x 32, labels), "test": ...}."""
    import pickle
    rng = np.random.default_rng(2)
    classes = 10 if name == "cifar10" else 100
    inner = folder / ({"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[name] if subfolder else "")
    inner.mkdir(parents=True, exist_ok=True)
    written = {}
    files = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]} if name == "cifar10" \
        else {"train": ["train"], "test": ["test"]}
    for split, count in (("train", n_train), ("test", n_test)):
        labels = np.arange(count) % classes
        images = rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
        for c in range(count):  # a learnable signal: class c brightens a class-specific row band
            images[c, :, 2 + 3 * (labels[c] % 10):4 + 3 * (labels[c] % 10), :] = 255
        written[split] = (images, labels)
        for file, part in zip(files[split], np.array_split(np.arange(count), len(files[split]))):
            key = b"labels" if name == "cifar10" else b"fine_labels"
            batch = {b"batch_label": b"testing batch", key: labels[part].tolist(),
                     b"data": images[part].reshape(len(part), 3072), b"filenames": [b"x.png"] * len(part)}
            if name == "cifar100":
                batch[b"coarse_labels"] = (labels[part] // 5).tolist()
            (inner / file).write_bytes(pickle.dumps(batch, protocol=2))
    return written
