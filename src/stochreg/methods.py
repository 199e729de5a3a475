"""Training methods by name: which unsupervised terms of the paper each one adds to the loss.

- ``supervised``: cross-entropy on the labelled images only (the baseline);
- ``ts``: + lambda_TS * transformation/stability over the n views of each unlabelled image;
- ``me``: + lambda_ME * mutual-exclusivity on every view;
- ``ts-me``: both, the paper's method.

    >>> METHODS.get("ts-me").terms
    ('ts', 'me')
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .losses import mutual_exclusivity, transformation_stability
from .registry import Registry


@dataclass(frozen=True)
class Method:
    name: str
    terms: tuple[str, ...]  # unsupervised terms, each weighted by its lambda

    @property
    def uses_unlabelled(self) -> bool:
        return bool(self.terms)

    @property
    def min_views(self) -> int:
        """TS compares passes, so it needs at least two views of each unlabelled image."""
        return 2 if "ts" in self.terms else 1

    def unsupervised_losses(self, probs_ulb: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted unsupervised terms for softmax outputs shaped (n, B, C)."""
        losses = {}
        if "ts" in self.terms:
            losses["ts"] = transformation_stability(probs_ulb)
        if "me" in self.terms:
            losses["me"] = mutual_exclusivity(probs_ulb)
        return losses


METHODS: Registry[Method] = Registry("method")
for _method in (Method("supervised", ()), Method("ts", ("ts",)), Method("me", ("me",)),
                Method("ts-me", ("ts", "me"))):
    METHODS.register(_method.name)(_method)
