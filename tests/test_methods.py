"""Every method passes the same tests (finite, differentiable, reducible by a few optimisation
steps, a few real training steps), plus the check that is specific to it; and the
RandAugment-style strong augmentation."""
from __future__ import annotations

import math

import pytest
import torch

from stochreg.config import resolve_config
from stochreg.losses import transformation_stability
from stochreg.methods import METHODS, Outputs
from stochreg.augment.randaugment import OPERATIONS, RandAugment
from tinydata import tiny_learner

UNSUPERVISED = [name for name in METHODS.names() if METHODS.get(name).uses_unlabelled]


def random_outputs(seed=0, n=3, batch=8, classes=5, threshold=0.6) -> tuple[torch.Tensor, Outputs]:
    """Logits with a mix of confident and unsure images (so that thresholds pass some)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, batch, classes, generator=generator) * torch.linspace(0.1, 4, batch).view(1, -1, 1)
    logits = logits.clone().requires_grad_(True)
    teacher = torch.randn(n, batch, classes, generator=generator, requires_grad=True)
    return logits, Outputs(logits, teacher, threshold)


def total(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(losses.values())


@pytest.mark.parametrize("name", UNSUPERVISED)
def test_loss_is_finite_and_differentiable(name):
    method = METHODS.get(name)
    logits, outputs = random_outputs()
    losses = method.unsupervised_losses(outputs)
    assert set(losses) == set(method.terms)
    value = total(losses)
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", UNSUPERVISED)
def test_a_few_optimisation_steps_reduce_it(name):
    method = METHODS.get(name)
    logits, outputs = random_outputs(seed=1)
    optimizer = torch.optim.SGD([logits], lr=0.5)
    first = None
    for _ in range(30):
        value = total(method.unsupervised_losses(Outputs(logits, outputs.teacher_logits, outputs.threshold)))
        first = value.item() if first is None else first
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert value.item() < first


@pytest.mark.parametrize("name", METHODS.names())
def test_a_few_real_training_steps(name, tiny_data_dir):
    learner, _, _ = tiny_learner(tiny_data_dir, method=name)
    before = [p.detach().clone() for p in learner.model.parameters()]
    for step in range(3):
        losses, _ = learner.step(step)
        assert set(losses) == {"ce", *METHODS.get(name).terms}
        assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.model.parameters()))
    assert all(p.grad is None for p in learner.ema.module.parameters())  # the EMA (teacher) never gets gradients


def test_mean_teacher_gives_the_teacher_no_gradient_and_needs_an_ema():
    logits, outputs = random_outputs()
    total(METHODS.get("mean-teacher").unsupervised_losses(outputs)).backward()
    assert outputs.teacher_logits.grad is None and logits.grad is not None
    from stochreg.errors import UsageError
    with pytest.raises(UsageError, match="needs a teacher"):
        resolve_config(overrides={"method": "mean-teacher", "ema": 0.0})


@pytest.mark.parametrize("name", ["pseudo-label", "fixmatch"])
def test_the_threshold_masks_unconfident_images(name):
    method = METHODS.get(name)
    unsure = torch.zeros(3, 4, 5, requires_grad=True)  # uniform: confidence 0.2
    value = total(method.unsupervised_losses(Outputs(unsure, None, 0.95)))
    value.backward()
    assert value.item() == 0 and unsure.grad.abs().sum() == 0
    sure = torch.zeros(3, 4, 5)
    sure[0, :, 2] = 10  # view 0 confident on class 2; views 1, 2 undecided
    value = total(method.unsupervised_losses(Outputs(sure, None, 0.95)))
    assert value.item() == pytest.approx(math.log(5), rel=1e-5)  # the other views' CE against class 2


def test_pi_model_is_ts_on_two_views():
    logits, outputs = random_outputs(n=2)
    pi = METHODS.get("pi-model").unsupervised_losses(outputs)["pi"]
    assert pi.item() == pytest.approx(transformation_stability(torch.softmax(logits, -1)).item(), rel=1e-6)


def test_entropy_is_zero_at_one_hot_and_log_c_at_uniform():
    ent = METHODS.get("entropy-min").unsupervised_losses
    assert ent(Outputs(torch.zeros(1, 2, 4)))["ent"].item() == pytest.approx(math.log(4))
    assert ent(Outputs(torch.tensor([[[50.0, 0, 0, 0]]])))["ent"].item() == pytest.approx(0, abs=1e-6)


def test_anchored_stability_moves_only_the_strong_views():
    logits, outputs = random_outputs(n=3)
    losses = METHODS.get("ts-me-anchored").unsupervised_losses(outputs)
    losses["ts"].backward()
    assert logits.grad[0].abs().max() == 0               # the weak view is the anchor: no gradient
    assert logits.grad[1:].abs().sum() > 0
    probs = torch.softmax(logits.detach(), -1)
    by_pairs = sum(((probs[j] - probs[0]) ** 2).sum(-1) for j in (1, 2)).mean()
    assert losses["ts"].item() == pytest.approx(by_pairs.item(), rel=1e-6)


@pytest.mark.parametrize("name, weak_views", [("fixmatch", 1), ("ts-me-strong", 1), ("ts-me-anchored", 1),
                                               ("ts-me-fixmatch", 2)])
def test_strong_methods_strongly_augment_their_strong_views_only(name, weak_views, tiny_data_dir):
    learner, data, _ = tiny_learner(tiny_data_dir, method=name, batch_labelled=4, batch_unlabelled=4, transform="none")
    x = data.train_images[:4].float().div(255).repeat(4, 1, 1, 1)  # 4 labelled rows, then 3 views of 4
    y = learner.views.apply(x, learner.aug_gen)
    weak_rows = 4 + 4 * weak_views
    assert torch.equal(y[:weak_rows], x[:weak_rows])  # labelled images and weak views: the weak transform (none)
    changed = (y[weak_rows:] - x[weak_rows:]).abs().flatten(1).amax(1) > 1e-3
    assert changed.float().mean() > 0.7  # almost every strong view differs (identity x identity is rare)


def test_labelled_strong_augments_that_share_of_the_labelled_rows_and_leaves_the_rest(tiny_data_dir):
    learner, data, _ = tiny_learner(tiny_data_dir, method="fixmatch", batch_labelled=4, batch_unlabelled=4,
                                    transform="none", labelled_strong=0.5, views=2)
    x = data.train_images[:4].float().div(255).repeat(3, 1, 1, 1)  # 4 labelled rows, a weak and a strong view of 4
    y = learner.views.apply(x, learner.aug_gen)
    differs = (y - x).abs().flatten(1).amax(1) > 1e-3
    assert torch.equal(y[2:8], x[2:8])                  # the other labelled rows and the weak views: untouched
    assert differs[:2].any() and differs[8:].float().mean() > 0.7


def test_labelled_strong_is_refused_where_there_is_no_strong_augmentation():
    from stochreg.errors import UsageError
    with pytest.raises(UsageError, match="labelled_strong.*ts-me has none"):
        resolve_config(overrides={"method": "ts-me", "labelled_strong": 0.5})
    with pytest.raises(UsageError, match=r"labelled_strong must be in \[0, 1\]"):
        resolve_config(overrides={"method": "fixmatch", "labelled_strong": 1.5})


def test_ts_me_fixmatch_is_the_paper_on_weak_views_plus_a_thresholded_strong_view():
    method = METHODS.get("ts-me-fixmatch")
    logits, outputs = random_outputs(n=4)
    losses = method.unsupervised_losses(outputs)
    paper = METHODS.get("ts-me").unsupervised_losses(Outputs(logits[:3]))
    assert losses["ts"].item() == pytest.approx(paper["ts"].item(), rel=1e-6)
    assert losses["me"].item() == pytest.approx(paper["me"].item(), rel=1e-6)
    losses["fixmatch"].backward()
    assert logits.grad[:3].abs().max() == 0  # the targets come from the weak views without gradient
    unsure = torch.zeros(4, 2, 5)
    assert method.unsupervised_losses(Outputs(unsure, None, 0.95))["fixmatch"].item() == 0
    sure = torch.zeros(4, 2, 5)
    sure[:3, :, 2] = 10  # the weak views agree, confidently, on class 2; the strong view is undecided
    assert method.unsupervised_losses(Outputs(sure, None, 0.95))["fixmatch"].item() == pytest.approx(math.log(5), rel=1e-5)


# --- RandAugment ---------------------------------------------------------------------------------

def test_randaugment_keeps_shape_and_range_and_replays_exactly():
    x = torch.rand(16, 3, 20, 20)
    aug = RandAugment()
    params = aug.sample(16, torch.Generator().manual_seed(0))
    y = aug.apply(x, params)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert torch.equal(y, aug.apply(x, params))


@pytest.mark.parametrize("op", OPERATIONS)
def test_every_operation_runs_and_identity_changes_nothing(op):
    x = torch.rand(6, 1, 12, 12)
    aug = RandAugment(ops=1, cutout=0)
    params = aug.sample(6, torch.Generator().manual_seed(1))
    params["kind"][:] = OPERATIONS.index(op)
    params["magnitude"][:] = 0.8
    y = aug.apply(x, params)
    assert torch.isfinite(y).all() and y.shape == x.shape
    if op == "identity":
        assert torch.allclose(y, x, atol=1e-5)
    else:
        assert not torch.allclose(y, x, atol=1e-3)


@pytest.mark.parametrize("name", ["ts-me", "fixmatch"])
def test_the_class_balance_term_joins_any_method(name, tiny_data_dir):
    learner, _, _ = tiny_learner(tiny_data_dir, method=name, lambda_balance=1.0)
    assert torch.allclose(learner.term("balance").prior, torch.full((10,), 0.1))  # the balanced split's frequencies
    losses, _ = learner.step(0)
    assert set(losses) == {"ce", *METHODS.get(name).terms, "balance"}
    assert torch.isfinite(losses["balance"]) and losses["balance"] >= 0


def test_separate_targets_keeps_the_rows_in_order_with_no_gradient_through_the_weak_view(tiny_data_dir):
    from stochreg.train.step import forward_views
    learner, data, _ = tiny_learner(tiny_data_dir, method="fixmatch", views=2, separate_targets=True)
    assert learner.target_rows == 8                      # view 0 of 8 unlabelled images
    learner.model.eval()                                  # batch norm by its running statistics: rows independent
    x = data.train_images[:26].float().div(255)           # 10 labelled rows, then a weak and a strong view
    logits = forward_views(learner, x, labelled=10)
    assert torch.allclose(logits, learner.model(x), atol=1e-5)
    logits[10:18].sum().backward(retain_graph=True)       # the weak rows' logits: no gradient to the weights
    assert all(p.grad is None or not p.grad.any() for p in learner.model.parameters())
    logits[18:].sum().backward()                          # the strong rows': through the weights
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.model.parameters())


def test_separate_targets_trains_fixmatch_and_is_refused_for_a_method_without_target_views(tiny_data_dir):
    from stochreg.errors import UsageError
    learner, _, _ = tiny_learner(tiny_data_dir, method="fixmatch", views=2, separate_targets=True)
    before = [p.detach().clone() for p in learner.model.parameters()]
    losses, _ = learner.step(0)
    assert {"ce", "fixmatch"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.model.parameters()))
    with pytest.raises(UsageError, match="separate_targets.*ts-me-fixmatch has none"):
        resolve_config(overrides={"method": "ts-me-fixmatch", "separate_targets": True})


def test_teacher_targets_take_the_weak_view_from_the_ema_weights_in_evaluation_mode(tiny_data_dir):
    from stochreg.train.step import forward_views
    learner, data, _ = tiny_learner(tiny_data_dir, method="fixmatch", views=2, teacher_targets=True, ema=0.9)
    assert learner.target_rows == 8
    learner.step(0)                                       # the EMA now differs from the live weights
    learner.step(1)
    x = data.train_images[:26].float().div(255)           # 10 labelled rows, a weak and a strong view of 8 images
    learner.model.train()
    logits = forward_views(learner, x, labelled=10)
    assert torch.allclose(logits[10:18], learner.ema.module(x[10:18]), atol=1e-5)     # the teacher's targets
    assert not torch.allclose(logits[10:18], learner.model.eval()(x[10:18]), atol=1e-3)
    assert learner.ema.module.training is False
    learner.optimizer.zero_grad(set_to_none=True)         # the last step's gradients
    logits[10:18].sum().backward(retain_graph=True)       # no gradient to the student through the targets
    assert all(p.grad is None or not p.grad.any() for p in learner.model.parameters())


def test_teacher_targets_need_target_views_and_an_ema():
    from stochreg.errors import UsageError
    with pytest.raises(UsageError, match="teacher_targets.*ts-me-fixmatch has none"):
        resolve_config(overrides={"method": "ts-me-fixmatch", "teacher_targets": True})
    with pytest.raises(UsageError, match="--ema must be > 0"):
        resolve_config(overrides={"method": "fixmatch", "teacher_targets": True, "ema": 0.0})
