"""The interface every unsupervised term implements, and what it sees."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import TrainConfig
from ..methods import Outputs
from ..runtime.distributed import SINGLE, Distributed

CROSS_ENTROPY_LABEL = "cross-entropy (labelled)"


@dataclass
class StepInputs:
    """What a term's losses see at one step: the views' outputs (logits shaped (n, B, C), the
    teacher's where the method needs one) and the training-set indices of the B unlabelled images."""

    outputs: Outputs
    unlabelled: torch.Tensor


@dataclass
class PrepareContext:
    """What a term may read before the first step: the run's resolved settings ``cfg`` (read, never
    changed), the data, the split, ``graph`` (the propagated labels resolved with the settings);
    ``notes`` take its lines for the run's log; ``dist``, the processes a term's state is shared by."""

    cfg: TrainConfig
    data: Any
    labelled: torch.Tensor
    device: torch.device
    notes: list[str] = field(default_factory=list)
    dist: Distributed = SINGLE
    graph: Any = None   # terms/graph.py's PropagatedLabels


def labelled_class_frequencies(ctx: PrepareContext) -> torch.Tensor:
    """(C,): the share of each class among the labelled split's images, on the run's device."""
    labels = ctx.data.train_labels.to(ctx.device)[ctx.labelled.to(ctx.device)]
    return torch.bincount(labels, minlength=ctx.data.num_classes).float() / len(ctx.labelled)


class Term:
    """One unsupervised term; subclasses set ``labels`` (name -> display label) and ``losses``."""

    labels: dict[str, str] = {}
    cfg: TrainConfig   # the run's settings, replaced when a time budget fixes the step count

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.labels)

    def prepare(self, ctx: PrepareContext) -> bool:
        """Work before the first step; False leaves the term out of the run."""
        return True

    def results(self) -> dict[str, Any]:
        """Fields this term adds to results.json."""
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What the term learns while training, for checkpoints (most terms learn nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restores :meth:`state_dict`'s state."""

    def weights(self, step: int) -> dict[str, float] | None:
        """The weight of each name at ``step``; None: the term sits this step out."""
        raise NotImplementedError

    def losses(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        """The unweighted losses, by name."""
        raise NotImplementedError

    def describe(self) -> str:
        """Its weights, for the run's summary."""
        raise NotImplementedError
