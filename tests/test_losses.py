"""Property tests for the transformation/stability and mutual-exclusivity losses."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stochreg import mutual_exclusivity, transformation_stability
from stochreg.losses import class_balance


def random_probs(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(*shape, generator=g, dtype=dtype) * 3, dim=-1)


def ts_by_pairs(probs):
    """The definition: sum over pairs j<k of ||p_j - p_k||^2, averaged over samples."""
    n = probs.shape[0]
    total = sum(((probs[j] - probs[k]) ** 2).sum(-1) for j, k in itertools.combinations(range(n), 2))
    return total.mean()


def me_by_definition(probs):
    """-sum_k p_k prod_{l != k} (1 - p_l), with explicit products."""
    C = probs.shape[-1]
    terms = []
    for k in range(C):
        others = torch.cat([probs[..., :k], probs[..., k + 1:]], dim=-1)
        terms.append(probs[..., k] * (1 - others).prod(-1))
    return -torch.stack(terms, -1).sum(-1).mean()


def test_ts_two_passes_is_squared_distance():
    p = random_probs(2, 7, 10)
    expected = ((p[0] - p[1]) ** 2).sum(-1).mean()
    assert torch.allclose(transformation_stability(p), expected)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 8), batch=st.integers(1, 6), classes=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_ts_equals_pairwise_definition(n, batch, classes, seed):
    p = random_probs(n, batch, classes, seed=seed)
    assert torch.allclose(transformation_stability(p), ts_by_pairs(p), atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_ts_invariant_to_order_of_passes(seed):
    p = random_probs(5, 4, 10, seed=seed)
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(transformation_stability(p), transformation_stability(p[perm]))


def test_ts_is_zero_for_identical_passes_and_positive_otherwise():
    p = random_probs(1, 3, 10).expand(4, 3, 10)
    assert transformation_stability(p).item() == pytest.approx(0.0, abs=1e-12)
    assert transformation_stability(random_probs(4, 3, 10)).item() > 0


def test_ts_gradient_reaches_every_pass():
    p = random_probs(3, 2, 5).requires_grad_()
    transformation_stability(p).backward()
    assert all(p.grad[j].abs().sum() > 0 for j in range(3))


def test_ts_gradcheck():
    p = random_probs(3, 2, 4).requires_grad_()
    assert torch.autograd.gradcheck(transformation_stability, (p,))


def test_ts_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(n, B, C\)"):
        transformation_stability(torch.rand(4, 10))
    with pytest.raises(ValueError, match="at least 2"):
        transformation_stability(torch.rand(1, 4, 10))


@pytest.mark.parametrize("classes", [2, 10, 100, 1000])
def test_me_of_one_hot_is_minus_one(classes):
    p = torch.zeros(3, classes)
    p[torch.arange(3), torch.tensor([0, classes // 2, classes - 1])] = 1.0
    assert mutual_exclusivity(p).item() == pytest.approx(-1.0)


def test_me_of_uniform_is_small():
    # C * (1/C) * (1 - 1/C)^(C-1) -> 1/e in magnitude: far from the one-hot minimum of -1.
    assert mutual_exclusivity(torch.full((1, 10), 0.1)).item() == pytest.approx(-(0.9 ** 9), rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(classes=st.integers(2, 30), seed=st.integers(0, 10_000))
def test_me_equals_definition(classes, seed):
    p = random_probs(4, classes, seed=seed)
    assert torch.allclose(mutual_exclusivity(p), me_by_definition(p), atol=1e-10)


def test_me_averages_over_passes_and_samples():
    p = random_probs(3, 5, 10)
    per_sample = torch.stack([mutual_exclusivity(p[i, j]) for i in range(3) for j in range(5)])
    assert torch.allclose(mutual_exclusivity(p), per_sample.mean())


def test_me_gradcheck():
    p = random_probs(3, 6).requires_grad_()
    assert torch.autograd.gradcheck(mutual_exclusivity, (p,))


@pytest.mark.parametrize("classes", [10, 100, 1000])
def test_me_stable_for_many_classes_and_one_hot(classes):
    for p in (random_probs(8, classes, dtype=torch.float32),
              torch.nn.functional.one_hot(torch.arange(8) % classes, classes).float()):
        p = p.clone().requires_grad_()
        value = mutual_exclusivity(p)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(p.grad).all()


def test_me_gradient_at_one_hot_is_analytic():
    # d/dp_m at p = e_j: -1 for m = j, +1 for every other class (from the product rule).
    p = torch.tensor([[0.0, 1.0, 0.0, 0.0]], requires_grad=True)
    mutual_exclusivity(p).backward()
    assert torch.allclose(p.grad, torch.tensor([[1.0, -1.0, 1.0, 1.0]]))


@settings(max_examples=25, deadline=None)
@given(classes=st.integers(2, 50), seed=st.integers(0, 10_000))
def test_me_bounds(classes, seed):
    value = mutual_exclusivity(random_probs(6, classes, seed=seed)).item()
    assert -1.0 - 1e-9 <= value <= 0.0


# --- class balance: KL(prior || mean prediction) ---

def balance_by_definition(probs, prior):
    mean = probs.reshape(-1, probs.shape[-1]).mean(0)
    return sum(float(p) * math.log(float(p) / float(m)) for p, m in zip(prior, mean) if p > 0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(2, 8), st.integers(0, 10_000))
def test_balance_equals_definition_and_is_never_negative(n, batch, classes, seed):
    probs = random_probs(n, batch, classes, seed=seed)
    prior = random_probs(classes, seed=seed + 1)
    value = float(class_balance(probs, prior))
    assert value == pytest.approx(balance_by_definition(probs, prior), abs=1e-9)
    assert value >= -1e-12


def test_balance_is_zero_when_confident_predictions_average_to_the_prior():
    one_hot = torch.eye(4, dtype=torch.float64).repeat(2, 1).view(2, 4, 4)   # every class once per view
    assert float(class_balance(one_hot, torch.full((4,), 0.25, dtype=torch.float64))) == pytest.approx(0, abs=1e-12)


def test_balance_gradient_moves_the_mean_toward_the_prior():
    """A pool that takes too many images for class 0: gradient descent lowers class 0's mean."""
    logits = torch.tensor([[3.0, 0.0, 0.0]] * 6 + [[0.0, 3.0, 0.0], [0.0, 0.0, 3.0]], requires_grad=True)
    prior = torch.full((3,), 1 / 3)
    optimizer = torch.optim.SGD([logits], lr=10.0)
    before = torch.softmax(logits, -1).mean(0)[0].item()
    first = class_balance(torch.softmax(logits, -1), prior).item()
    for _ in range(20):
        loss = class_balance(torch.softmax(logits, -1), prior)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = torch.softmax(logits, -1).mean(0)
    assert after[0].item() < before - 0.04
    assert class_balance(torch.softmax(logits, -1), prior).item() < 0.6 * first


def test_balance_ignores_classes_the_prior_rules_out():
    probs = random_probs(3, 5, 4, seed=2)
    prior = torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    assert torch.isfinite(class_balance(probs, prior))
    assert float(class_balance(probs, prior)) == pytest.approx(balance_by_definition(probs, prior), abs=1e-9)
