"""The one-line error of a run that ran out of memory, naming the settings that need less.

A folder of large photos can ask for more memory than the machine has: a step holds every
labelled image and every view of every unlabelled one at the training size, and an evaluation
batch holds ``eval_batch`` images. torch then fails deep inside an operator (on a CPU a
``RuntimeError`` from its allocator, on a GPU ``torch.OutOfMemoryError``); the user should
learn from one line what each step held and which settings shrink it.

    >>> from stochreg.config import resolve_config
    >>> cfg = resolve_config(overrides={"batch_unlabelled": 80, "views": 2})
    >>> error = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1228800000 bytes")
    >>> is_out_of_memory(error)
    True
    >>> print(out_of_memory_message(cfg, (3, 600, 800), "cpu"))  # doctest: +NORMALIZE_WHITESPACE
    ran out of memory on cpu with images of 3x600x800 (each step holds 32 labelled images and 80 unlabelled
    ones in 2 views each; an evaluation batch 1000 images); start again with less: --image-size 28 (smaller
    images on a smaller network), --batch-unlabelled 40, --eval-batch 100
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ..config import TrainConfig
from ..errors import StochregError
from .pace import SMALL_SIDE

# what torch's CPU allocators say when an allocation fails (Linux and macOS, Windows)
CPU_ALLOCATION_FAILURES = ("can't allocate memory", "not enough memory")


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):   # torch.OutOfMemoryError is the same class
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in CPU_ALLOCATION_FAILURES)


def out_of_memory_message(cfg: TrainConfig, image_shape: tuple[int, int, int], device: str) -> str:
    c, h, w = image_shape
    unlabelled = cfg.batch_unlabelled or 0
    held = f"{cfg.batch_labelled} labelled images"
    if unlabelled:
        held += f" and {unlabelled} unlabelled ones in {cfg.views} views each"
    less = []
    if max(h, w) > SMALL_SIDE:
        less.append(f"--image-size {SMALL_SIDE} (smaller images on a smaller network)")
    if unlabelled > 1:
        less.append(f"--batch-unlabelled {unlabelled // 2}")
    elif cfg.batch_labelled > 1:
        less.append(f"--batch-labelled {cfg.batch_labelled // 2}")
    if cfg.eval_batch > 100:
        less.append("--eval-batch 100")
    return (f"ran out of memory on {device} with images of {c}x{h}x{w} (each step holds {held}; an evaluation "
            f"batch {cfg.eval_batch} images); start again with less: " + ", ".join(less))


@contextlib.contextmanager
def advice_on_out_of_memory(cfg: TrainConfig, image_shape: tuple[int, int, int], device: str) -> Iterator[None]:
    """Turns running out of memory inside the block into a :class:`StochregError` that says what to change."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise StochregError(out_of_memory_message(cfg, image_shape, device)) from None
