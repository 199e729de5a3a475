"""Pseudo-labelling (Lee 2013, with a confidence threshold as later work uses it): the model's
own confident prediction on view 0 (argmax, not differentiated) becomes the target of a
cross-entropy on the other views (on view 0 itself when n = 1). Images whose top probability is
below --threshold contribute nothing. Hyper-parameters: --lambda-u, --threshold."""
from __future__ import annotations

import torch

from ..losses import weighted_view_cross_entropy
from .base import Method, Outputs, TermName, register


def thresholded_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor,
                              threshold: float | torch.Tensor,
                              target_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of every view in ``logits`` (n, B, C) against the argmax of ``target_probs``
    (B, C; not differentiated), masked to images whose top target probability reaches
    ``threshold`` (one number, or one per class (C,): the target class's); averaged over all images
    and views. ``target_weights`` (C,) multiply the target probabilities, renormalised, first."""
    with torch.no_grad():
        if target_weights is not None:
            target_probs = target_probs * target_weights
            target_probs = target_probs / target_probs.sum(dim=-1, keepdim=True)
        confidence, target = target_probs.max(dim=-1)
        if isinstance(threshold, torch.Tensor):
            threshold = threshold[target]
        mask = (confidence >= threshold).to(logits.dtype)
    return weighted_view_cross_entropy(logits, target, mask)


def confident_cross_entropy(out: Outputs) -> torch.Tensor:
    """Cross-entropy of views 1..n-1 (or of view 0 when n = 1) against the argmax of view 0,
    masked to images whose view-0 confidence reaches the threshold; averaged over all images."""
    logits = out.logits
    others = logits[1:] if logits.shape[0] > 1 else logits[:1]
    return thresholded_cross_entropy(others, torch.softmax(logits[0].detach(), dim=-1), out.threshold,
                                     out.target_weights)


def pseudo_label_loss(out: Outputs) -> dict[str, torch.Tensor]:
    return {"pl": confident_cross_entropy(out)}


register(Method("pseudo-label", (TermName("pl", "pseudo-label"),), pseudo_label_loss, uses_threshold=True,
                doc="cross-entropy against the confident argmax of view 0"))
