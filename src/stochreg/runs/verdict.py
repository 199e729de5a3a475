"""Whether a finished run learnt anything: per-class recall, the balanced error, and the warnings a
person must see when the model is no better than a constant answer.

With unbalanced classes (7 functional solar cells in 10) a model that answers the common class for
every image errs on 30% of them and looks half decent; one trained on 40 labels can do worse still.
So the run compares its error with that constant answer's, checks that its answers are not (nearly)
all one class, and says when it stopped before its unlabelled terms had ramped up to full weight.

    >>> labels, predicted = np.array([0] * 7 + [1] * 3), np.array([0] * 10)
    >>> scores = class_scores(labels, predicted, 2)
    >>> scores["recall"], round(scores["balanced_error"], 2), round(scores["constant_error"], 2)
    ([1.0, 0.0], 0.5, 0.3)
    >>> for line in nothing_learnt(labels, predicted, ["ok", "cracked"], "test"):
    ...     print(line[:80])
    warning: the test error 30.00% is no better than answering ok for every image (3
    warning: the model answers ok for 100% of the test images, of which 70% are ok: 
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# A model that gives one class to this share of the images, where the class is much rarer, answers a constant.
ONE_CLASS_SHARE = 0.95
ONE_CLASS_MARGIN = 0.1
ADVICE = "more labelled images (a few more of each class help most), or more steps (--iters)"
ADVICE_PRETRAINED = ", or a network that starts from ImageNet weights (--net efficientnet-lite0)"


def class_scores(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> dict:
    """Per-class recall (None for a class with no image), the balanced error (the mean over the classes
    present of their error) and the error of answering the most common class for every image."""
    recall = [float(np.mean(predicted[labels == k] == k)) if np.any(labels == k) else None
              for k in range(num_classes)]
    present = [r for r in recall if r is not None]
    counts = np.bincount(labels, minlength=num_classes)
    return {"recall": recall, "balanced_error": 1 - float(np.mean(present)) if present else None,
            "constant_error": float(1 - counts.max() / max(1, counts.sum())), "constant_class": int(counts.argmax())}


def nothing_learnt(labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str], scored: str,
                   pretrained: bool = False) -> list[str]:
    """Warnings for a model no better than always answering the most common class of the ``scored`` images
    (``test``, ``validation`` or ``held-out``), or one that answers (nearly) one class for every image;
    ``pretrained``: the network started from pretrained weights already (the advice does not suggest them)."""
    if len(labels) == 0:
        return []
    scores = class_scores(labels, predicted, len(class_names))
    error = float(np.mean(labels != predicted))
    warnings = []
    constant = class_names[scores["constant_class"]]
    if error >= scores["constant_error"] - 1e-9:   # equal counts, computed two ways
        warnings.append(f"warning: the {scored} error {100 * error:.2f}% is no better than answering {constant} for "
                        f"every image ({100 * scores['constant_error']:.2f}%): the model has learnt nothing useful "
                        f"about these classes; try {ADVICE}{'' if pretrained else ADVICE_PRETRAINED}")
    shares = np.bincount(predicted, minlength=len(class_names)) / len(predicted)
    top = int(shares.argmax())
    truth = float(np.mean(labels == top))
    if shares[top] >= ONE_CLASS_SHARE and truth <= shares[top] - ONE_CLASS_MARGIN:
        warnings.append(f"warning: the model answers {class_names[top]} for {100 * shares[top]:.0f}% of the {scored} "
                        f"images, of which {100 * truth:.0f}% are {class_names[top]}: it tells the classes apart "
                        "hardly at all")
    return warnings


def stopped_early(iters: int, rampup_iters: int, uses_unlabelled: bool) -> list[str]:
    """A warning for a run that ended before its unlabelled terms reached their full weight.

    >>> stopped_early(200, 500, True)[0][:60]
    'warning: the run ended after 200 steps, before the unlabelle'
    """
    if not uses_unlabelled or iters >= rampup_iters:
        return []
    return [f"warning: the run ended after {iters} steps, before the unlabelled images' terms ramped up to full weight "
            f"({rampup_iters} steps): it learnt from the unlabelled images only in part; give it more steps (--iters, "
            "--time-budget) or a shorter ramp-up (--rampup-iters)"]
