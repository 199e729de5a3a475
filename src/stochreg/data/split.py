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
    """Picks ``num_labels / num_classes`` indices of each class (one more for a few classes when
    the count is not a multiple) with a generator seeded by ``seed``.

    The result is sorted, depends only on (labels, num_labels, seed), and is what the run folder
    saves. The unlabelled pool is the whole training set, these images included.
    ``num_labels == 0`` takes every labelled image (for the user's own data, whose labelled and
    unlabelled images come apart).
    """
    if num_labels == 0:  # every labelled image (unlabelled ones carry label -1)
        return torch.nonzero(labels >= 0).flatten()
    if num_labels < 0:
        raise UsageError(f"--labels must be >= 0, got {num_labels}")
    if num_labels < num_classes:   # a class without a labelled image is a class the model never learns
        raise UsageError(f"--labels {num_labels} is fewer than the {num_classes} classes: every class needs at least "
                         f"one labelled image; use --labels {num_classes} or more (or 0 for every labelled image)")
    # As balanced as the count allows: every class gets num_labels // C, and a seeded choice of
    # classes one more (from a generator of its own, so that the split of a multiple of C is
    # the same as before this was allowed): 732 SVHN labels are 73 or 74 per class.
    per_class, extra = divmod(num_labels, num_classes)
    counts = [per_class] * num_classes
    if extra:
        for c in torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed + 7919))[:extra].tolist():
            counts[c] += 1
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        if len(members) < counts[c]:
            raise UsageError(f"--labels {num_labels} asks for {counts[c]} images of class {c}, "
                             f"but the training set has only {len(members)}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:counts[c]]])
    return torch.cat(chosen).sort().values


# Labelled classes this many times apart in size get a note: the labelled batches follow the
# split's proportions, so the model sees the small classes' labels that much less often.
UNBALANCED_RATIO = 3


def unbalanced_labels_note(labels: torch.Tensor, num_classes: int,
                           class_names: list[str] | None = None) -> str | None:
    """A note for a labelled split whose largest class has at least ``UNBALANCED_RATIO`` times the
    images of its smallest (a folder of 50 cats and 5 dogs), naming the ``--labels`` count that takes
    as many of each; None for a balanced split.

    >>> print(unbalanced_labels_note(torch.tensor([0] * 50 + [1] * 5 + [2] * 20), 3, ["cat", "dog", "owl"]))
    note: the labelled classes are unbalanced (cat: 50 images, dog: 5); the labelled batches follow these
    proportions, so predictions may lean to the larger classes; --labels 15 takes 5 of each (the others stay
    in the unlabelled pool)
    >>> unbalanced_labels_note(torch.tensor([0] * 10 + [1] * 4), 2) is None
    True
    """
    counts = torch.bincount(labels, minlength=num_classes).tolist()
    largest = max(range(num_classes), key=counts.__getitem__)
    smallest = min(range(num_classes), key=counts.__getitem__)
    if counts[smallest] == 0 or counts[largest] < UNBALANCED_RATIO * counts[smallest]:
        return None
    name = (lambda c: class_names[c]) if class_names else str
    return (f"note: the labelled classes are unbalanced ({name(largest)}: {counts[largest]} images, {name(smallest)}: "
            f"{counts[smallest]}); the labelled batches follow these proportions, so predictions may lean to the "
            f"larger classes; --labels {counts[smallest] * num_classes} takes {counts[smallest]} of each (the others "
            "stay in the unlabelled pool)")


def validation_split(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """``size`` training images with known labels (label >= 0), drawn uniformly with a generator
    of their own seeded by ``seed``, sorted: the validation images, whose labels only score.

    >>> validation_split(torch.arange(10) % 2, 3, seed=0).tolist()
    [6, 8, 9]
    """
    known = torch.nonzero(labels >= 0).flatten()
    if size > len(known):
        raise UsageError(f"--val-size {size} asks for more images than the {len(known)} labelled training images")
    order = torch.randperm(len(known), generator=torch.Generator().manual_seed(seed + 4001))
    return known[order[:size]].sort().values
