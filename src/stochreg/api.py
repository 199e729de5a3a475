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
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import resolve_config
from .data import Dataset
from .data.pixels import as_int64_labels, as_nchw_uint8
from .errors import DataError, StochregError, UsageError
from .runs.trained import Run, load_run
from .train import default_run_folder, train

ARRAYS = "arrays"   # the dataset name of a run trained on arrays given from Python


def arrays_dataset(images: Any, labels: Any, test: tuple[Any, Any] | None = None,
                   class_names: list[str] | None = None) -> Dataset:
    """A Dataset from training images and labels (-1 = unlabelled) and an optional (images, labels) test set."""
    check_pixel_range(images, "training images")
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
    # classes without names are called by their number, as the run's outputs call them
    names = [str(name) for name in class_names] if class_names else [str(k) for k in range(classes)]
    return Dataset(ARRAYS, x, y, tx, ty, classes, False, names)


# Training images whose brightest pixel lies above 1 and at most this are on a scale of their own (scikit-learn's
# digits: 0..16), neither 0..1 nor 0..255: read as 0..255 they would be nearly black, and train worse.
NARROW_PIXEL_RANGE = 32


def check_pixel_range(images: Any, what: str) -> None:
    """Refuses a set of images whose values span 0..16 or the like (see NARROW_PIXEL_RANGE)."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.size and np.issubdtype(array.dtype, np.number) and array.dtype != np.uint8 and np.isfinite(array).all():
        high = float(array.max())
        if 1 < high <= NARROW_PIXEL_RANGE:
            raise DataError(f"{what}: pixel values reach only {high:g} (from {float(array.min()):g}): neither 0..1 "
                            f"nor 0..255; scale them first, e.g. images * 255 / {high:g}")


def fit(data: str | os.PathLike | tuple[Any, Any], out: str | os.PathLike | None = None, *,
        test: tuple[Any, Any] | None = None, class_names: list[str] | None = None, preset: str = "default",
        progress: bool = True, overwrite: bool = False, resume: bool = False, **settings: Any) -> Run:
    """Trains a model and returns it as a :class:`stochreg.runs.trained.Run` (``predict``, ``class_names``).

    ``data`` is a folder in the layout of ``stochreg train --data`` (labelled/CLASS, unlabelled/,
    optional test/CLASS), or a pair (images, labels) with label -1 for the unlabelled images
    (``class_names``: what label k is called; "0", "1", ... unless given); ``test`` an optional
    (images, labels) pair for a test estimate. ``out`` is the run folder (default: a new one under
    runs/); ``overwrite`` reuses a non-empty one and ``resume`` continues the run in it, as the
    command line's ``--overwrite`` and ``--resume-if-exists`` do.
    """
    dataset = None
    if isinstance(data, (str, os.PathLike)):
        settings["dataset"] = f"folder:{Path(data).expanduser().resolve()}"
    elif isinstance(data, tuple) and len(data) == 2:
        dataset = arrays_dataset(*data, test=test, class_names=class_names)
        settings["dataset"] = ARRAYS
    else:
        raise UsageError("fit(data): give a folder path or a pair (images, labels)")
    try:
        cfg = resolve_config(preset, overrides=settings)
        if resume and out is None:
            raise UsageError("--resume-if-exists needs --out RUN_DIR: the folder to continue")
        folder = Path(out) if out is not None else Path(default_run_folder(cfg))
        train(cfg, folder, overwrite=overwrite, progress=progress, dataset=dataset, resume=resume)
    except StochregError as exc:
        raise in_python_words(exc) from None
    return load_run(folder)


# The command line's words in errors, as a caller of fit() says them
PYTHON_WORDS = {"--overwrite": "overwrite=True", "--resume-if-exists": "resume=True", "--out RUN_DIR": "out=...",
                "--out": "out="}


def in_python_words(exc: StochregError) -> StochregError:
    """The error with the flags it suggests named as fit()'s keyword arguments: ``--overwrite`` is
    ``overwrite=True``, ``--labels 40`` is ``labels=40``."""
    text = str(exc)
    for flag, keyword in PYTHON_WORDS.items():
        text = text.replace(flag, keyword)
    text = re.sub(r"--([a-z][a-z0-9-]*) (-?\d[\d.]*)", lambda m: f"{m.group(1).replace('-', '_')}={m.group(2)}", text)
    return type(exc)(text) if type(exc) in (UsageError, DataError) else exc
