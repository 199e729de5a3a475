"""The one training step of every method: draw the batches, make the views, ONE forward pass over
labelled and unlabelled views together (two with ``--separate-targets``: the views that only give
targets apart, without gradient, by the EMA weights with ``--teacher-targets``), the labelled
cross-entropy plus ``weight * loss`` of every unsupervised term (terms/), backward, optimiser step,
EMA. It knows no term by name."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..data.images import images_to_float
from ..methods import Outputs
from ..terms import StepInputs
from .schedule import learning_rate

if TYPE_CHECKING:   # for the annotation only: state.py imports this module
    from .state import Learner


def forward_views(learner: "Learner", x: torch.Tensor, labelled: int) -> torch.Tensor:
    """The logits of every row of ``x``, in its order. With ``--separate-targets`` the rows of the
    method's target-only views (after the ``labelled`` rows) come from a pass of their own without
    gradient, the other rows from one with it; else one pass over all rows. With ``--teacher-targets``
    that pass is the EMA weights' in evaluation mode (no dropout, batch norm by running statistics)."""
    targets = learner.target_rows
    if not targets:
        return learner.forward_model(x)
    end = labelled + targets
    target_model = learner.ema.module if learner.cfg.teacher_targets else learner.forward_model
    with torch.no_grad():
        target_logits = target_model(x[labelled:end])
    rest = learner.forward_model(torch.cat([x[:labelled], x[end:]]).contiguous(memory_format=learner.memory_format))
    return torch.cat([rest[:labelled], target_logits, rest[labelled:]])


def training_step(learner: "Learner", step: int) -> tuple[dict[str, torch.Tensor], float]:
    """One optimisation step; returns the loss terms (tensors, not synchronised) and the lr."""
    cfg, n, method = learner.cfg, learner.cfg.views, learner.method
    lr = learning_rate(cfg, step, learner.iters_per_epoch)
    for group in learner.optimizer.param_groups:
        group["lr"] = lr
    # --- views: labelled images once, every unlabelled image n times (view-major) ---
    idx_lb, images_lb, idx_ulb, images_ulb = learner.batches.next()
    batch = [images_to_float(images_lb)]
    if method.uses_unlabelled:
        batch.append(images_to_float(images_ulb).repeat(n, 1, 1, 1))
    x = learner.views.apply(torch.cat(batch), learner.aug_gen).contiguous(memory_format=learner.memory_format)
    # --- one forward pass over labelled and unlabelled views together (target-only views apart) ---
    with learner.autocast():
        logits = forward_views(learner, x, len(idx_lb))
    logits = logits.float()  # the losses in float32 whatever the forward pass ran in
    losses = {"ce": F.cross_entropy(logits[:len(idx_lb)], learner.batches.labels[idx_lb])}
    loss = losses["ce"]
    if method.uses_unlabelled:
        shape = (n, learner.local_unlabelled, -1)
        teacher_logits = None
        if method.needs_teacher:  # the EMA weights on the same views, with their own noise, no gradient
            with torch.no_grad():
                learner.ema.module.train()
                with learner.autocast():
                    teacher_logits = learner.ema.module(x[len(idx_lb):]).float().view(shape)
                learner.ema.module.eval()
        inputs = StepInputs(Outputs(logits[len(idx_lb):].view(shape), teacher_logits, cfg.threshold), idx_ulb)
        for term in learner.terms:
            weights = term.weights(step)
            if weights is None:
                continue
            for name, value in term.losses(inputs).items():
                losses[name] = value
                loss = loss + weights[name] * value
    # --- backward, step, EMA ---
    learner.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    learner.optimizer.step()
    if learner.ema is not None:
        learner.ema.update(learner.model)
    return {k: v.detach() for k, v in losses.items()}, lr
