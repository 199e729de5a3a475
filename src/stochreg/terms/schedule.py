"""How the unsupervised weights move over a run: the ramp-up every term shares and the graph
term's fade."""
from __future__ import annotations

import math

from ..config import TrainConfig


def unsupervised_weight(cfg: TrainConfig, step: int) -> float:
    """Ramp-up of the unsupervised terms: exp(-5 (1 - t)^2) for t = step / rampup_iters < 1
    (Laine & Aila's schedule), then 1. Early on the predictions are noise; pushing them to agree
    or to be one-hot at that point would lock in the noise."""
    if step >= cfg.rampup_iters:
        return 1.0
    t = step / cfg.rampup_iters
    return math.exp(-5.0 * (1.0 - t) ** 2)


def graph_fade(cfg: TrainConfig, step: int) -> float:
    """Factor on the graph term's weight: (1 + cos(pi t)) / 2 for t = step / graph_fade_iters < 1,
    then 0; always 1 when graph_fade_iters is 0."""
    if not cfg.graph_fade_iters:   # 0, or unset where no recipe resolved it
        return 1.0
    if step >= cfg.graph_fade_iters:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * step / cfg.graph_fade_iters))
