"""The paper's methods: the supervised baseline, transformation/stability (TS), mutual
exclusivity (ME) and both (Sajjadi et al. 2016). TS needs n >= 2 views; ME acts on every view."""
from __future__ import annotations

import torch

from ..losses import mutual_exclusivity, transformation_stability
from .base import Method, Outputs, TermName, register

TS = TermName("ts", "transformation/stability", "lambda_ts")
ME = TermName("me", "mutual exclusivity", "lambda_me")


def paper_terms(terms: tuple[str, ...]):
    def loss(out: Outputs) -> dict[str, torch.Tensor]:
        probs = torch.softmax(out.logits, dim=-1)
        losses = {}
        if "ts" in terms:
            losses["ts"] = transformation_stability(probs)
        if "me" in terms:
            losses["me"] = mutual_exclusivity(probs)
        return losses
    return loss


register(Method("supervised", (), doc="cross-entropy on the labelled images only"))
register(Method("ts", (TS,), paper_terms(("ts",)), min_views=2,
                doc="+ lambda_TS * sum over pairs of views of ||p_j - p_k||^2"))
register(Method("me", (ME,), paper_terms(("me",)), doc="+ lambda_ME * mutual exclusivity of every view"))
register(Method("ts-me", (TS, ME), paper_terms(("ts", "me")), min_views=2, doc="the paper's method: TS + ME"))
