"""FixMatch (Sohn et al. 2020): the prediction on a weakly transformed view (view 0: the run's
--transform), when confident, is the hard target of a cross-entropy on strongly augmented views
(views 1..n-1: the weak transformation then RandAugment and cutout). Hyper-parameters:
--lambda-u (their lambda_u = 1), --threshold (their tau = 0.95), --views (1 weak + n-1 strong);
--flex-threshold and --dist-align (terms/method.py) change the targets' thresholds and probabilities."""
from __future__ import annotations

import torch

from .base import Method, Outputs, TermName, register
from .pseudo_label import confident_cross_entropy

FIXMATCH = TermName("fixmatch", "FixMatch (confident weak view -> strong view)")


def fixmatch_loss(out: Outputs) -> dict[str, torch.Tensor]:
    return {"fixmatch": confident_cross_entropy(out)}


register(Method("fixmatch", (FIXMATCH,), fixmatch_loss, min_views=2, strong_views=True, target_views=1,
                uses_threshold=True,
                doc="confident weak-view argmax as the target of the strong views"))
