"""Pi-model (Laine & Aila 2017): two stochastic passes of each image are pushed together by the
squared difference of their softmax outputs; both passes receive gradients. It is the two-view
case of the paper's TS loss, so with n > 2 views only the first two are compared.
Hyper-parameter: --lambda-u (their w_max, with their ramp-up: --rampup-iters)."""
from __future__ import annotations

import torch

from .base import Method, Outputs, TermName, register


def pi_loss(out: Outputs) -> dict[str, torch.Tensor]:
    probs = torch.softmax(out.logits[:2], dim=-1)
    return {"pi": (probs[0] - probs[1]).pow(2).sum(-1).mean()}


register(Method("pi-model", (TermName("pi", "Pi-model"),), pi_loss, min_views=2, doc="||p(view 1) - p(view 2)||^2, both with gradients"))
