"""Training images that stay on disk: decoded per sample by DataLoader workers, ahead of the step.

For datasets that do not fit in memory (ImageNet), ``--stream`` keeps the training images as
files. :class:`FileImages` stands in for the uint8 (N, C, H, W) tensor of an in-memory dataset:
indexing it with a tensor of indices decodes those images. :class:`Prefetcher` draws the index
batches of the coming steps from the learner's own samplers, in order, and DataLoader worker
processes decode them while the network trains on the current step. The stochastic
transformations are then applied batched on the device, as for in-memory data, so a streamed
run trains on exactly the images an in-memory run of the same files would.

Resume stays exact: before drawing each step's indices the prefetcher keeps a snapshot of the
sampler state, and a checkpoint records the snapshot of the first step not yet trained on, so
the batches that were decoded ahead and never used are drawn again after a resume.
"""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..errors import DataError
from .images import read_image


class FileImages:
    """A lazy uint8 (N, C, H, W) 'tensor' of image files, each converted to (C, H, W) on reading."""

    dtype = torch.uint8

    def __init__(self, files: list[Path], image_shape: tuple[int, int, int]):
        self.files, self.image_shape = list(files), tuple(image_shape)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), *self.image_shape))

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, indices) -> torch.Tensor:
        """Decodes ``indices`` (a tensor or list of ints, a slice, or one int) into a uint8 tensor."""
        if isinstance(indices, int):
            return torch.from_numpy(read_image(self.files[indices], self.image_shape)[0])
        if isinstance(indices, slice):
            indices = range(len(self.files))[indices]
        indices = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        if not indices:
            return torch.empty((0, *self.image_shape), dtype=torch.uint8)
        return torch.from_numpy(np.stack([read_image(self.files[i], self.image_shape)[0] for i in indices]))

    def subset(self, indices: torch.Tensor) -> "FileImages":
        """The images at ``indices``, still undecoded."""
        return FileImages([self.files[i] for i in indices.tolist()], self.image_shape)

    def to(self, device) -> "FileImages":
        return self  # batches move to the device once decoded


class _DecodeSteps(torch.utils.data.Dataset):
    """One item = one step's (labelled indices, unlabelled indices), decoded in a worker."""

    def __init__(self, images: FileImages):
        self.images = images

    def __getitem__(self, item: tuple[torch.Tensor, torch.Tensor | None]):
        idx_lb, idx_ulb = item
        return idx_lb, self.images[idx_lb], idx_ulb, (self.images[idx_ulb] if idx_ulb is not None else None)


class Prefetcher:
    """Decoded batches for the coming steps, in order, from ``draw`` (which draws one step's
    indices from the samplers) and ``snapshot`` (the sampler state before a draw)."""

    def __init__(self, images: FileImages, draw: Callable[[], tuple], snapshot: Callable[[], Any],
                 workers: int):
        self.snapshots: deque = deque()
        self.draw, self.snapshot = draw, snapshot

        def steps() -> Iterator[tuple]:
            while True:
                self.snapshots.append(self.snapshot())
                yield self.draw()

        # The loader gets a generator of its own: by default it would draw its workers' base seed
        # from the global RNG, shifting the dropout and pooling stream of the training. Workers
        # beyond the CPUs this process may use only compete with the training (and torch warns);
        # the batches come in step order whatever their number.
        workers = min(workers, usable_cpus())
        self.loader = torch.utils.data.DataLoader(
            _DecodeSteps(images), sampler=steps(), batch_size=None, num_workers=workers,
            prefetch_factor=2 if workers else None, persistent_workers=False,
            generator=torch.Generator().manual_seed(0))
        self.batches = iter(self.loader)

    def next(self) -> tuple:
        """(labelled indices, their uint8 images, unlabelled indices, their images) of the next step."""
        try:
            batch = next(self.batches)
        except DataError as exc:
            raise DataError(f"{worker_error_message(exc)} (a training image read from disk during the run, "
                            "--stream: mend or replace the file, then `stochreg train --resume RUN`)") from None
        self.snapshots.popleft()
        return batch

    def state_of_next_step(self) -> Any:
        """The sampler state from which the next step's indices are (or will be) drawn."""
        return self.snapshots[0] if self.snapshots else self.snapshot()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_error_message(exc: Exception) -> str:
    """The message of an error raised in a DataLoader worker, without the worker's traceback that
    the loader adds to it when it raises the error again in the training process."""
    text = str(exc).rstrip()
    if not text.startswith("Caught "):
        return text
    last = text.splitlines()[-1]
    return last.split(f"{type(exc).__name__}: ", 1)[-1]


def image_subset(images, indices: torch.Tensor):
    """The images at ``indices``: a tensor's rows, or a :class:`FileImages` of those files (still on disk)."""
    return images.subset(indices) if hasattr(images, "subset") else images[indices]
