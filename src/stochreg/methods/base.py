"""What a training method is (its losses over the views' logits, the terms they are weighted as, the views
it needs) and the registry of methods by name; each method's module registers itself here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..registry import Registry


@dataclass(frozen=True)
class Outputs:
    """What a method's loss sees: the student's logits over the n views of B unlabelled images
    (n, B, C), the teacher's on the same views when the method needs one, and its settings: the
    confidence threshold of pseudo-labels, one number or one per class (C,) (``--flex-threshold``),
    and per-class factors (C,) that the pseudo-labels' probabilities are multiplied by and
    renormalised with before the threshold and the argmax (``--dist-align``; None: as they are)."""

    logits: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    threshold: float | torch.Tensor = 0.95
    target_weights: torch.Tensor | None = None


@dataclass(frozen=True)
class TermName:
    """One loss a method returns: its name (as logged), its display label and the config field
    that holds its weight."""

    name: str
    label: str
    weight: str = "lambda_u"

    def describe(self, value: float) -> str:
        """``lambda_TS=4.0`` for the paper's terms, ``fixmatch: lambda_u=1.0`` for the others."""
        if self.weight == "lambda_u":
            return f"{self.name}: lambda_u={value}"
        return f"lambda_{self.weight.removeprefix('lambda_').upper()}={value}"


@dataclass(frozen=True)
class Method:
    name: str
    term_names: tuple[TermName, ...]                         # the losses it returns
    loss: Callable[[Outputs], dict[str, torch.Tensor]] | None = None
    min_views: int = 1
    strong_views: bool = False                               # views weak_views..n-1 strongly augmented
    weak_views: int = 1                                      # with strong_views: how many lead weak (< 1: n + this)
    needs_teacher: bool = False                              # the EMA weights' logits on the views
    target_views: int = 0                                    # leading views whose logits are only no-gradient targets
    uses_threshold: bool = False                             # pseudo-labels from its weak views, past --threshold
    doc: str = ""

    @property
    def terms(self) -> tuple[str, ...]:
        """The names of the losses it returns."""
        return tuple(term.name for term in self.term_names)

    @property
    def uses_unlabelled(self) -> bool:
        return bool(self.terms)

    def first_strong_view(self, views: int) -> int | None:
        """The index of the first strongly augmented view among ``views`` (None: all weak)."""
        if not self.strong_views:
            return None
        return self.weak_views if self.weak_views >= 1 else views + self.weak_views

    def pseudo_label_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, C): the class probabilities a thresholded method takes its pseudo-labels from, the
        mean over its weak views (view 0 alone where no view is strong), not differentiated."""
        weak = self.first_strong_view(logits.shape[0]) or 1
        return torch.softmax(logits[:weak].detach(), dim=-1).mean(dim=0)

    def unsupervised_losses(self, outputs: Outputs) -> dict[str, torch.Tensor]:
        """The unweighted unsupervised terms."""
        return self.loss(outputs) if self.loss is not None else {}


METHODS: Registry[Method] = Registry("method")


def register(method: Method) -> Method:
    METHODS.register(method.name)(method)
    return method
