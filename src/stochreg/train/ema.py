"""An exponential moving average of a model's weights, for evaluation.

The decay warms up as min(decay, (1 + t) / (10 + t)) after t updates (as TensorFlow's
ExponentialMovingAverage does with num_updates), so a short run's average is not dominated by
the random initial weights. Buffers (batch-norm statistics) are copied, not averaged.

    >>> model = torch.nn.Linear(2, 1)
    >>> ema = EMA(model, decay=0.99)
    >>> ema.update(model)
    >>> ema.module(torch.zeros(1, 2)).shape
    torch.Size([1, 1])
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        weight = 1 - self.current_decay()
        torch._foreach_lerp_(list(self.module.parameters()), list(model.parameters()), weight)
        for mine, theirs in zip(self.module.buffers(), model.buffers()):
            mine.copy_(theirs)

    def state_dict(self) -> dict:
        """The averaged weights, loadable into the model itself (what a checkpoint's "ema" holds)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict, updates: int) -> None:
        """Restores averaged weights and the update count (which sets the warm-up of the decay)."""
        self.module.load_state_dict(state)
        self.updates = updates
