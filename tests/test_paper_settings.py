"""The authors' SparseConvNet settings carried into stochreg's normalisation (config.sparseconvnet_settings):
their update rule and summed gradients against torch's SGD on stochreg's averaged losses."""
from __future__ import annotations

import torch

from stochreg import mutual_exclusivity, transformation_stability
from stochreg.config import sparseconvnet_settings

SLOTS, VIEWS, CLASSES = 50, 5, 10


def test_torch_nesterov_on_the_mean_gradient_takes_sparseconvnets_steps_on_the_summed_one():
    s = sparseconvnet_settings(slots=SLOTS, views=VIEWS, lr=0.003, lambda_ts=1.0, lambda_me=0.1)
    mu = s["momentum"]
    torch.manual_seed(0)
    x, y = torch.randn(SLOTS, 4, dtype=torch.float64), torch.randn(SLOTS, dtype=torch.float64)
    w_theirs, velocity = torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    w_ours = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    sgd = torch.optim.SGD([w_ours], lr=s["lr"], momentum=s["momentum"], nesterov=True)
    for _ in range(200):
        summed = x.T @ (x @ w_theirs - y)                     # d/dw of 1/2 sum of squared errors
        # NetworkInNetworkLayer.cu's dGradientDescent, "NAG light"
        w_theirs -= velocity * mu
        velocity = mu * velocity - 0.003 * (1 - mu) * summed
        w_theirs += velocity * (1 + mu)
        sgd.zero_grad()
        (0.5 * (x @ w_ours - y).pow(2).mean()).backward()     # stochreg averages over the batch
        sgd.step()
    assert torch.allclose(w_ours.detach(), w_theirs, rtol=1e-9, atol=1e-12)


def test_stochreg_losses_with_the_converted_lambdas_give_sparseconvnets_gradient_times_the_slots():
    s = sparseconvnet_settings(slots=SLOTS, views=VIEWS, lr=0.003, lambda_ts=1.0, lambda_me=0.1)
    torch.manual_seed(1)
    images = SLOTS // VIEWS
    probs = torch.softmax(torch.randn(VIEWS, images, CLASSES, dtype=torch.float64), -1).requires_grad_()
    ours = s["lambda_ts"] * transformation_stability(probs) + s["lambda_me"] * mutual_exclusivity(probs)
    (grad_ours,) = torch.autograd.grad(ours, probs)
    # SoftmaxClassifier.cu: ts_backprop adds lambda_ts * sum_i (p_j - p_i) to pass j's gradient, and
    # mx_backprop lambda_mx * d/dp of -sum_k p_k prod_{l != k} (1 - p_l), per slot, summed
    p = probs.detach()
    ts = 1.0 * (VIEWS * p - p.sum(0, keepdim=True))
    prod_others = torch.stack([torch.prod(torch.cat([1 - p[..., :k], 1 - p[..., k + 1:]], -1), -1)
                               for k in range(CLASSES)], -1)
    me = torch.zeros_like(p)
    for k in range(CLASSES):       # d/dp_k of sum_j p_j prod_{l != j}(1 - p_l)
        others = torch.cat([1 - p[..., :k], 1 - p[..., k + 1:]], -1)
        p_others = torch.cat([p[..., :k], p[..., k + 1:]], -1)
        me[..., k] = prod_others[..., k] - (p_others * torch.stack(
            [torch.prod(torch.cat([others[..., :i], others[..., i + 1:]], -1), -1) for i in range(CLASSES - 1)], -1)
        ).sum(-1)
    theirs = ts - 0.1 * me
    assert torch.allclose(SLOTS * grad_ours, theirs, rtol=1e-6, atol=1e-9)
