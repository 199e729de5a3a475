"""The views of one step: labelled images once, then every unlabelled image n times (view-major),
each row transformed by the run's random transformation, and the method's last views (with, on
request, a share of the labelled images) also strongly augmented (RandAugment-style). Training and
``stochreg show-views`` make their views with this same plan. Under torchrun the parameters are drawn for the global batch (identical on
every rank) and each rank applies its own rows."""
from __future__ import annotations

import torch

from ..config import TrainConfig
from ..runtime.distributed import SINGLE, Distributed
from ..methods import Method
from ..augment.randaugment import RandAugment
from ..augment.transforms import TRANSFORMS


class ViewPlan:
    """Which rows of the view batch are weak or strong, and the augmentations that make them."""

    def __init__(self, cfg: TrainConfig, method: Method, labelled: int, unlabelled: int,
                 device: torch.device, dist: Distributed = SINGLE):
        self.cfg, self.method, self.device, self.dist = cfg, method, device, dist
        self.transform = TRANSFORMS.get(cfg.transform)
        self.rows = self._global_rows() if dist.world_size > 1 else None
        self.strong = RandAugment() if method.strong_views else None
        # rows from here on (labelled, then view-major blocks) are strong views, and so are the
        # first labelled rows (batches are drawn at random, so the first rows are a random share)
        self.first_strong_row = (labelled + method.first_strong_view(cfg.views) * unlabelled
                                 if self.strong is not None else None)
        self.strong_labelled_rows = round(cfg.labelled_strong * labelled) if self.strong is not None else 0

    def _global_rows(self) -> torch.Tensor:
        """Which rows of the global view batch (labelled, then n unlabelled blocks) this rank owns."""
        cfg, shard_lb, shard_ulb = self.cfg, self.dist.shard(self.cfg.batch_labelled), self.dist.shard(self.cfg.batch_unlabelled)
        rows = [torch.arange(cfg.batch_labelled)[shard_lb]]
        if self.method.uses_unlabelled:
            for view in range(cfg.views):
                start = cfg.batch_labelled + view * cfg.batch_unlabelled
                rows.append(torch.arange(start, start + cfg.batch_unlabelled)[shard_ulb])
        return torch.cat(rows).to(self.device)

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The views of ``x`` (this rank's rows, float images): the transformation on every row,
        then the strong augmentation on the strong rows."""
        x = self._augment(self.transform, x, generator)
        if self.strong is not None:
            strong_rows = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            strong_rows[self.first_strong_row:] = True
            strong_rows[:self.strong_labelled_rows] = True
            # parameters are drawn for every row, as they always were, so that the generator's stream
            # (and every run's trajectory) does not depend on which rows are strong; only the strong
            # rows are computed (RandAugment costs several times the weak transformation a row)
            params = self._params(self.strong, len(x), generator)
            strong = self.strong.apply(x[strong_rows], {k: v[strong_rows] for k, v in params.items()})
            x = x.index_put((strong_rows,), strong)   # a new tensor: the caller's images stay as they are
        return x

    def _params(self, augment, rows: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``augment``'s parameters for this rank's ``rows`` rows, drawn for the global batch under torchrun."""
        if self.rows is None:
            return augment.sample(rows, generator, self.device)
        params = augment.sample(len(self.rows) * self.dist.world_size, generator, self.device)
        return {k: v[self.rows] for k, v in params.items()}

    def _augment(self, augment, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if getattr(augment, "is_identity", False):
            return x
        return augment.apply(x, self._params(augment, len(x), generator))
