"""Distribution alignment (ReMixMatch, Berthelot et al. 2020), ``--dist-align``: the probabilities a
thresholded method takes its pseudo-labels from are multiplied by p(y) / p~(y) and renormalised,
where p(y) is the labelled split's class frequencies and p~(y) a running average (momentum 0.999)
of the model's own pseudo-label probabilities on the unlabelled images. A class the model predicts
less often than the labels say it occurs gets its pseudo-labels' confidence raised, one it
over-predicts lowered, so that a class it finds hard is not starved of pseudo-labels while its
confident look-alikes teach their own class instead.

The running average starts at p(y) (factors of 1: no alignment before the model has predicted
anything) and takes each step's batch mean before that step's factors are computed, as
ReMixMatch's does; under torchrun the batch mean is averaged over the ranks, so every rank
aligns alike. The average is checkpointed, so a resumed run aligns exactly as an unbroken one.
"""
from __future__ import annotations

import torch

from ..runtime.distributed import SINGLE, Distributed

MOMENTUM = 0.999


class DistributionAlignment:
    """Factors p(y) / p~(y) for ``prior`` p(y) (C,), from a running average of observed probabilities."""

    def __init__(self, prior: torch.Tensor, momentum: float = MOMENTUM, dist: Distributed = SINGLE):
        self.prior, self.momentum, self.dist = prior.float(), momentum, dist
        self.running = self.prior.clone()

    def observe(self, probs: torch.Tensor) -> None:
        """Takes the batch mean of ``probs`` (B, C) (this rank's; averaged over the ranks) into the average."""
        batch_mean = self.dist.mean(probs.detach().float().mean(dim=0))
        self.running.mul_(self.momentum).add_(batch_mean, alpha=1 - self.momentum)

    def factors(self) -> torch.Tensor:
        """(C,): what each class's pseudo-label probability is multiplied by (before renormalising)."""
        return self.prior / self.running.clamp_min(1e-6)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"running": self.running.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.running.copy_(state["running"])
