"""The data a run trains and is scored on: the dataset (loaded once per machine under torchrun, or
given from Python, with the notes its reading would give), the labelled split, the optional
validation split, and the image sets that are scored."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..config import TrainConfig, default_labels
from ..data import Dataset, labelled_split, load_dataset, validation_split
from ..data.repeats import repeated_array_notes
from ..runtime.distributed import Distributed
from ..errors import UsageError
from ..data.streaming import image_subset


def label_count(cfg: TrainConfig, data: Dataset) -> int:
    """``--labels``, or ``--label-fraction`` of the labelled training images when that is set."""
    if cfg.label_fraction > 0:
        return max(1, round(cfg.label_fraction * int((data.train_labels >= 0).sum())))
    return cfg.labels if cfg.labels is not None else default_labels(cfg.dataset)


def image_options(cfg: TrainConfig) -> dict[str, Any]:
    """How the user's own images are read (folder: and csv: datasets; ignored by the others)."""
    return {"stream": cfg.stream, "image_size": cfg.image_size, "channels": cfg.channels, "holdout": cfg.holdout,
            "seed": cfg.seed}


def as_digits_given(data: Dataset, cfg: TrainConfig) -> Dataset:
    """The dataset, its images taken for digits or not as ``--digits`` says (unset: as it is known)."""
    return data if cfg.digits is None else dataclasses.replace(data, is_digits=cfg.digits)


def load_run_data(cfg: TrainConfig, dist: Distributed, log: Callable[[str], None]) -> Dataset:
    """Loads the dataset; under torchrun the first process of each machine goes first, so that
    a missing dataset is fetched once per machine, not by every process at the same time."""
    def load() -> Dataset:
        return load_dataset(cfg.dataset, cfg.data_dir, log=log, **image_options(cfg))

    data = load() if dist.local_rank == 0 else None
    dist.barrier()
    return data if data is not None else load()


def given_data_notes(data: Dataset) -> list[str]:
    """What a dataset given from Python (stochreg.fit on arrays) gets said about it, as a folder's reading
    says it: repeated images (test images among the training images, one image labelled as two classes)."""
    if not isinstance(data.train_images, torch.Tensor):
        return []
    return repeated_array_notes(data.train_images.numpy(), data.train_labels.tolist(), data.test_images.numpy(),
                                data.test_labels.tolist(), data.label_names)


@dataclass
class Splits:
    """The labelled split, the validation split (None without ``--val-size``) and the scored
    sets by name (``test`` where the data has test images, ``val``)."""

    labelled: torch.Tensor
    validation: torch.Tensor | None
    scored: dict[str, tuple[Any, torch.Tensor]]


def make_splits(cfg: TrainConfig, data: Dataset) -> Splits:
    seeds = cfg.seeds()
    if label_count(cfg, data) > len(data.train_labels):
        raise UsageError(f"--labels {cfg.labels} exceeds the {len(data.train_labels)} training images")
    # The validation images' labels only score: they are never picked as labelled.
    validation = validation_split(data.train_labels, cfg.val_size, seeds["split"]) if cfg.val_size else None
    split_labels = data.train_labels if validation is None else data.train_labels.index_fill(0, validation, -1)
    labelled = labelled_split(split_labels, label_count(cfg, data), data.num_classes, seeds["split"])
    # Data without test images (the user's own folder) trains and predicts without a test estimate.
    scored = {"test": (data.test_images, data.test_labels)} if len(data.test_labels) else {}
    if validation is not None:
        images = data.train_images
        scored["val"] = (image_subset(images, validation),
                         data.train_labels[validation])
    return Splits(labelled, validation, scored)
