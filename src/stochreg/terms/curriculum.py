"""FlexMatch's curriculum thresholds (Zhang et al. 2021), ``--flex-threshold``: each class's
confidence threshold grows with how many unlabelled images the model already predicts confidently
as that class, so that more pseudo-labels pass early in a run and for the classes it finds hard.

Every image of the unlabelled pool keeps the class it was last predicted with confidence at least
``--threshold`` (tau), or none. With sigma_c the images kept as class c and the images kept as no
class counted as one more class (FlexMatch's threshold warm-up), beta_c = sigma_c / max(sigma) and
class c's threshold is tau * beta_c / (2 - beta_c), their convex mapping: 0 for every class while no
image is kept, tau for the most-learned class once fewer images are unkept than it holds. A step's
mask uses the thresholds from before its own predictions are kept, as FlexMatch's does.
"""
from __future__ import annotations

import torch

from ..runtime.distributed import SINGLE, Distributed


class CurriculumThresholds:
    """The class each image of a pool of ``pool_size`` was last confidently predicted as (-1: none)."""

    def __init__(self, pool_size: int, num_classes: int, threshold: float, device: torch.device,
                 dist: Distributed = SINGLE):
        self.threshold, self.num_classes, self.dist = threshold, num_classes, dist
        self.kept = torch.full((pool_size,), -1, dtype=torch.long, device=device)

    def thresholds(self) -> torch.Tensor:
        """(C,): each class's threshold now."""
        counts = torch.bincount(self.kept + 1, minlength=self.num_classes + 1).float()  # unkept, class 0, 1, ...
        share = counts[1:] / counts.max()      # counts sum to the pool size, so the max is at least 1
        return self.threshold * share / (2 - share)

    def observe(self, index: torch.Tensor, probs: torch.Tensor) -> None:
        """Keeps the confident predictions ``probs`` (B, C) of the pool images ``index`` (B,): this
        rank's; every rank's are gathered, so that every rank keeps the same classes."""
        confidence, label = probs.max(dim=-1)
        label = torch.where(confidence >= self.threshold, label, torch.full_like(label, -1))
        index, label = self.dist.all_gather(index), self.dist.all_gather(label)
        confident = label >= 0
        self.kept[index[confident]] = label[confident]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"kept": self.kept.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.kept.copy_(state["kept"])
