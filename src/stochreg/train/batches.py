"""Where each step's images come from: seeded endless samplers over the labelled split and the
unlabelled pool, the dataset resident on the device as uint8 (a batch is an index, not a host
copy), or DataLoader workers decoding ahead (--stream). Under torchrun every rank draws the
global batch and keeps its shard, so the images are the same whatever the world size."""
from __future__ import annotations

from typing import Any

import torch

from ..config import TrainConfig
from ..data.streaming import FileImages, Prefetcher
from ..runtime.distributed import Distributed
from ..runtime.devices import to_device


class CyclingSampler:
    """Endless batches of indices: a fresh seeded permutation of ``indices`` each pass over them."""

    def __init__(self, indices: torch.Tensor, batch: int, generator: torch.Generator):
        self.indices, self.batch, self.generator = indices, batch, generator
        self.order, self.position = self._permutation(), 0

    def _permutation(self) -> torch.Tensor:
        return self.indices[torch.randperm(len(self.indices), generator=self.generator)]

    def next(self) -> torch.Tensor:
        taken = []
        needed = self.batch
        while needed:
            if self.position == len(self.order):
                self.order, self.position = self._permutation(), 0
            chunk = self.order[self.position:self.position + needed]
            self.position += len(chunk)
            needed -= len(chunk)
            taken.append(chunk)
        return torch.cat(taken)

    def state_dict(self) -> dict[str, Any]:
        """The current pass's order and position. The order is a reference, not a copy: a new pass
        replaces it and nothing changes it in place (the generator is saved by its owner)."""
        return {"order": self.order, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.position = state["order"], int(state["position"])


class Batches:
    """The labelled and unlabelled batches of every step, on the device."""

    def __init__(self, cfg: TrainConfig, images, labels: torch.Tensor, labelled: torch.Tensor,
                 uses_unlabelled: bool, data_seed: int, device: torch.device, dist: Distributed):
        self.cfg, self.device, self.dist, self.uses_unlabelled = cfg, device, dist, uses_unlabelled
        self.images, self.labels = images.to(device), labels.to(device)
        self.generator = torch.Generator().manual_seed(data_seed)
        self.labelled = CyclingSampler(labelled, cfg.batch_labelled, self.generator)
        self.unlabelled = CyclingSampler(torch.arange(len(self.images)), cfg.batch_unlabelled, self.generator)
        self.prefetcher = None

    def draw_indices(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's labelled and unlabelled indices: the global batch's, this rank's shard."""
        idx_lb = self.labelled.next()[self.dist.shard(self.cfg.batch_labelled)]
        if not self.uses_unlabelled:
            return idx_lb, None
        return idx_lb, self.unlabelled.next()[self.dist.shard(self.cfg.batch_unlabelled)]

    def sampler_state(self) -> dict[str, Any]:
        """Where the samplers stand (cheap enough to take before every step's draw)."""
        return {"labelled": self.labelled.state_dict(), "unlabelled": self.unlabelled.state_dict(),
                "data": self.generator.get_state()}

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(labelled indices, labelled uint8 images, unlabelled indices, unlabelled uint8 images) on
        the device: indexed from the device-resident dataset, or decoded ahead by DataLoader
        workers (--stream)."""
        if not isinstance(self.images, FileImages):
            idx_lb, idx_ulb = self.draw_indices()
            idx_lb = to_device(idx_lb, self.device)
            idx_ulb = to_device(idx_ulb, self.device) if idx_ulb is not None else None
            images_ulb = self.images[idx_ulb] if idx_ulb is not None else None
            return idx_lb, self.images[idx_lb], idx_ulb, images_ulb
        if self.prefetcher is None:  # made at the first step, after a resume has set the samplers
            self.prefetcher = Prefetcher(self.images, self.draw_indices, self.sampler_state, self.cfg.workers)
        idx_lb, images_lb, idx_ulb, images_ulb = self.prefetcher.next()
        return (to_device(idx_lb, self.device), to_device(images_lb, self.device),
                to_device(idx_ulb, self.device) if idx_ulb is not None else None,
                to_device(images_ulb, self.device) if images_ulb is not None else None)

    def state_dict(self) -> dict[str, Any]:
        """The samplers as the next step will find them (batches decoded ahead but not trained on
        yet are drawn again after a resume)."""
        samplers = self.prefetcher.state_of_next_step() if self.prefetcher is not None else self.sampler_state()
        return {"samplers": {name: {"order": samplers[name]["order"].clone(), "position": samplers[name]["position"]}
                             for name in ("labelled", "unlabelled")}, "data": samplers["data"]}

    def load_state_dict(self, samplers: dict[str, Any], data_rng: torch.Tensor) -> None:
        self.labelled.load_state_dict(samplers["labelled"])
        self.unlabelled.load_state_dict(samplers["unlabelled"])
        self.generator.set_state(data_rng)
