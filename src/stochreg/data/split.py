"""The labelled split: a seeded, class-balanced choice of training indices.

    >>> labels = torch.arange(100) % 10
    >>> idx = labelled_split(labels, 20, num_classes=10, seed=0)
    >>> torch.bincount(labels[idx]).tolist()
    [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
"""
from __future__ import annotations

import torch

from ..errors import UsageError


def labelled_split(labels: torch.Tensor, num_labels: int, num_classes: int, seed: int) -> torch.Tensor:
    """Picks ``num_labels / num_classes`` indices of each class with a generator seeded by ``seed``.

    The result is sorted, depends only on (labels, num_labels, seed), and is what the run folder
    saves. The unlabelled pool is the whole training set, these images included.
    ``num_labels == 0`` takes every labelled image (for the user's own data, whose labelled and
    unlabelled images come apart).
    """
    if num_labels == 0:  # every labelled image (unlabelled ones carry label -1)
        return torch.nonzero(labels >= 0).flatten()
    if num_labels < 0:
        raise UsageError(f"--labels must be >= 0, got {num_labels}")
    if num_labels % num_classes:
        raise UsageError(f"--labels {num_labels} is not a multiple of the {num_classes} classes "
                         f"(the split is class-balanced)")
    per_class = num_labels // num_classes
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        if len(members) < per_class:
            raise UsageError(f"--labels {num_labels} asks for {per_class} images of class {c}, "
                             f"but the training set has only {len(members)}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values
