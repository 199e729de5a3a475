"""Class balance (``--lambda-balance``): KL(class frequencies of the labelled split || the mean
prediction over the step's unlabelled views), so that the unlabelled pool does not drift into
one class."""
from __future__ import annotations

import torch

from ..config import TrainConfig
from ..losses import class_balance
from .base import PrepareContext, StepInputs, Term, labelled_class_frequencies
from .schedule import unsupervised_weight


class ClassBalance(Term):
    labels = {"balance": "class balance"}

    def __init__(self, cfg: TrainConfig):
        self.cfg, self.prior = cfg, None

    def prepare(self, ctx: PrepareContext) -> bool:
        self.prior = labelled_class_frequencies(ctx)
        return True

    def weights(self, step: int) -> dict[str, float]:
        return {"balance": unsupervised_weight(self.cfg, step) * self.cfg.lambda_balance}

    def losses(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        return {"balance": class_balance(torch.softmax(inputs.outputs.logits, dim=-1), self.prior)}

    def describe(self) -> str:
        return f"class balance: lambda={self.cfg.lambda_balance}"
