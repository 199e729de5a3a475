"""The loss watch: the first step at which a loss term stopped being finite, noted on the device
without synchronising, and turned into one clear error at the next logging point or checkpoint."""
from __future__ import annotations

import torch

from ..runtime.distributed import Distributed
from ..errors import StochregError


class NonFiniteWatch:
    """Remembers, on the device and without synchronising, the first step at which a loss term
    stopped being finite and which terms did; ``check`` (at logging points and before every
    checkpoint, so a saved checkpoint is always good) turns that into one clear error."""

    def __init__(self, device: torch.device, dist: Distributed):
        self.dist = dist
        self.first_step = torch.tensor(-1, device=device)
        self.bad_terms = torch.zeros(0, dtype=torch.bool, device=device)   # one flag per name in self.names
        self.names: list[str] = []
        self._absent = torch.zeros((), device=device)   # the value of a term that left the step

    def observe(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        # Terms can join or leave the step (a faded graph term leaves it): track them by name.
        new_names = [name for name in losses if name not in self.names]
        if new_names:
            self.bad_terms = torch.cat([self.bad_terms, self.bad_terms.new_zeros(len(new_names))])
            self.names += new_names
        values = [losses[name].detach() if name in losses else self._absent for name in self.names]
        nonfinite = ~torch.isfinite(torch.stack(values))
        newly = (self.first_step < 0) & nonfinite.any()
        self.first_step = torch.where(newly, step, self.first_step)
        self.bad_terms = torch.where(newly, nonfinite, self.bad_terms)

    def check(self, last_good: str) -> None:
        """Raises on every rank when any rank saw a non-finite loss (a collective under torchrun)."""
        never = torch.iinfo(torch.int64).max
        first = self.dist.min(torch.where(self.first_step < 0, never, self.first_step).view(1))
        step = int(first)
        if step != never:
            bad_terms = self.dist.max(self.bad_terms.int())
            bad = ", ".join(n for n, b in zip(self.names, bad_terms.tolist()) if b)
            raise StochregError(f"loss term {bad} became NaN or infinite at step {step}; training stopped. "
                                f"Last good checkpoint: {last_good}. Lower --lr or the lambdas "
                                f"(resume with --resume RUN --force)", every_rank=True)
