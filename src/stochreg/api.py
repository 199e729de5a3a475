"""Training from Python: ``stochreg.fit`` on a folder of images or on arrays, returning the run.

    >>> import stochreg
    >>> run = stochreg.fit("photos", transform="crop-flip", out="runs/photos")    # doctest: +SKIP
    >>> probs = run.predict(["new/a.jpg", "new/b.jpg"])                          # doctest: +SKIP
    >>> [run.class_names[k] for k in probs.argmax(1)]                            # doctest: +SKIP
    ['cat', 'dog']

Settings are the fields of :class:`stochreg.config.TrainConfig` (the command line's flags with
underscores); ``labels`` is every labelled image unless given.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import resolve_config
from .data import Dataset
from .data.pixels import as_int64_labels, as_nchw_uint8
from .errors import DataError, UsageError
from .runs.trained import Run, load_run
from .train import default_run_folder, train

ARRAYS = "arrays"   # the dataset name of a run trained on arrays given from Python


def arrays_dataset(images: Any, labels: Any, test: tuple[Any, Any] | None = None,
                   class_names: list[str] | None = None) -> Dataset:
    """A Dataset from training images and labels (-1 = unlabelled) and an optional (images, labels) test set."""
    x = as_nchw_uint8(images, "training images")
    y = torch.from_numpy(as_int64_labels(np.asarray(labels), "training labels"))
    known = y[y >= 0]
    if not len(known):
        raise DataError("training labels: no labelled image (every label is -1)")
    classes = len(class_names) if class_names else int(known.max()) + 1
    if test is not None:
        tx, ty = as_nchw_uint8(test[0], "test images"), torch.from_numpy(as_int64_labels(np.asarray(test[1]), "test labels"))
    else:
        tx, ty = torch.empty((0, *x.shape[1:]), dtype=torch.uint8), torch.empty(0, dtype=torch.long)
    return Dataset(ARRAYS, x, y, tx, ty, classes, False, list(class_names) if class_names else None)


def fit(data: str | os.PathLike | tuple[Any, Any], out: str | os.PathLike | None = None, *,
        test: tuple[Any, Any] | None = None, class_names: list[str] | None = None, preset: str = "default",
        progress: bool = True, **settings: Any) -> Run:
    """Trains a model and returns it as a :class:`stochreg.runs.trained.Run` (``predict``, ``class_names``).

    ``data`` is a folder in the layout of ``stochreg train --data`` (labelled/CLASS, unlabelled/,
    optional test/CLASS), or a pair (images, labels) with label -1 for the unlabelled images;
    ``test`` an optional (images, labels) pair for a test estimate. ``out`` is the run folder
    (default: a new one under runs/).
    """
    dataset = None
    if isinstance(data, (str, os.PathLike)):
        settings["dataset"] = f"folder:{Path(data).expanduser().resolve()}"
    elif isinstance(data, tuple) and len(data) == 2:
        dataset = arrays_dataset(*data, test=test, class_names=class_names)
        settings["dataset"] = ARRAYS
    else:
        raise UsageError("fit(data): give a folder path or a pair (images, labels)")
    cfg = resolve_config(preset, overrides=settings)
    folder = Path(out) if out is not None else Path(default_run_folder(cfg))
    train(cfg, folder, progress=progress, dataset=dataset)
    return load_run(folder)
