"""Entropy minimisation (Grandvalet & Bengio 2005): the mean entropy of every view's prediction,
a cousin of the paper's mutual-exclusivity loss (both push predictions towards one class).
Hyper-parameter: --lambda-u."""
from __future__ import annotations

import torch

from .base import Method, Outputs, TermName, register


def entropy_loss(out: Outputs) -> dict[str, torch.Tensor]:
    log_probs = torch.log_softmax(out.logits, dim=-1)
    return {"ent": -(log_probs.exp() * log_probs).sum(-1).mean()}


register(Method("entropy-min", (TermName("ent", "entropy"),), entropy_loss, doc="mean prediction entropy of every view"))
