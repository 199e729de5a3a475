"""Mean Teacher (Tarvainen & Valpola 2017): the student's prediction on each view is pushed
towards the prediction of the teacher, an exponential moving average of the student's weights
(--ema, its decay), on another view of the same image; the teacher gets no gradient.
Hyper-parameters: --lambda-u (consistency weight), --ema (teacher decay, must be > 0)."""
from __future__ import annotations

import torch

from .base import Method, Outputs, TermName, register


def mean_teacher_loss(out: Outputs) -> dict[str, torch.Tensor]:
    student = torch.softmax(out.logits, dim=-1)
    # each view's target: the teacher on the next view (the same view when n = 1), never differentiated
    teacher = torch.softmax(out.teacher_logits.detach(), dim=-1).roll(1, dims=0)
    return {"mt": (student - teacher).pow(2).sum(-1).mean()}


register(Method("mean-teacher", (TermName("mt", "mean teacher"),), mean_teacher_loss, min_views=1, needs_teacher=True,
                doc="||p_student(view v) - p_teacher(view v+1)||^2, teacher = EMA of the weights"))
