"""The two unsupervised losses of Sajjadi et al. (NIPS 2016), as pure functions.

Both take softmax outputs, not logits, exactly as the authors' released code does, and can be
dropped into any PyTorch training loop:

- :func:`transformation_stability` (TS) penalises disagreement between the n stochastic passes
  of the same unlabelled image;
- :func:`mutual_exclusivity` (ME) pushes every prediction towards a one-hot vector.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# 1 - p is clamped away from zero before its logarithm is taken; the gradient of the clamped
# factor is then zero, which is the correct limit: a class with p_l -> 1 makes the product of
# (1 - p_l) vanish for every k != l, whatever the other probabilities do.
_ONE_MINUS_P_FLOOR = 1e-12


def transformation_stability(probs: torch.Tensor) -> torch.Tensor:
    """Sum over pairs j<k of ||p_j - p_k||^2, averaged over samples.

    ``probs`` has shape (n, B, C): n stochastic passes of B samples over C classes. The sum over
    the n(n-1)/2 pairs is computed in O(n) with the identity
    ``sum_{j<k} ||p_j - p_k||^2 = n * sum_j ||p_j - mean_j p_j||^2``.
    Gradients flow through every pass: the loss is symmetric in the passes.

    >>> p = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])   # n=2 passes, B=1, C=2
    >>> float(transformation_stability(p))               # ||(1,-1)||^2
    2.0
    """
    if probs.dim() != 3:
        raise ValueError(f"transformation_stability expects probs shaped (n, B, C), got {tuple(probs.shape)}")
    n = probs.shape[0]
    if n < 2:
        raise ValueError("transformation_stability needs at least 2 passes (n >= 2)")
    deviation = probs - probs.mean(dim=0, keepdim=True)
    return n * deviation.pow(2).sum(dim=(0, 2)).mean()


def mutual_exclusivity(probs: torch.Tensor) -> torch.Tensor:
    """-sum_k p_k prod_{l != k} (1 - p_l), averaged over every leading dimension.

    ``probs`` has shape (..., C). The value is -1 exactly at a one-hot vector and close to 0 at a
    uniform one. The products are taken in log space (sum of log(1 - p_l) minus log(1 - p_k)),
    so they neither underflow for C = 1000 nor turn into NaN at an exact one-hot input.

    >>> float(mutual_exclusivity(torch.tensor([0.0, 1.0, 0.0])))
    -1.0
    """
    # Clamping 1 - p (not its logarithm) keeps the backward pass finite at p = 1: the clamp's
    # gradient is zero there, so no 0 * inf is ever formed.
    log_one_minus = torch.log((1 - probs).clamp_min(_ONE_MINUS_P_FLOOR))
    log_prod_others = log_one_minus.sum(dim=-1, keepdim=True) - log_one_minus
    return -(probs * log_prod_others.exp()).sum(dim=-1).mean()


def class_balance(probs: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """KL(prior || mean prediction): how far the batch's average prediction is from the class
    frequencies expected, ``sum_k prior_k log(prior_k / mean_k)``.

    ``probs`` has shape (..., C); ``prior`` (C,) sums to 1. The value is 0 exactly when the mean
    prediction equals the prior, whatever the single predictions are, so it leaves ME's one-hot
    pull alone and only resists the whole unlabelled pool drifting into one class (a cluster of
    one digit absorbed by another, as crossed sevens by the twos).

    >>> round(float(class_balance(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0.5, 0.5]))), 6)
    0.0
    """
    mean = probs.reshape(-1, probs.shape[-1]).mean(dim=0).clamp_min(1e-12)
    present = prior > 0  # 0 * log 0 = 0: a class the prior rules out contributes nothing
    return (prior[present] * (prior[present].log() - mean[present].log())).sum()


def weighted_view_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every view in ``logits`` (n, B, C) against one hard target per image
    (``targets``, B), each image weighted by ``weights`` (B; 0 leaves it out); averaged over all
    images and views. The pseudo-label family's loss (a confidence mask as the weights) and the
    graph term's (label propagation's confidence)."""
    n, batch, classes = logits.shape
    ce = F.cross_entropy(logits.reshape(n * batch, classes), targets.repeat(n), reduction="none").view(n, batch)
    return (ce * weights.to(ce.dtype)).mean()
