"""The chosen method's own losses (methods/) as one term: each of its names weighted by the
config field its method declares (``lambda_ts``, ``lambda_me``, else ``lambda_u``), ramped up."""
from __future__ import annotations

import torch

from ..config import TrainConfig
from ..methods import METHODS
from .base import StepInputs, Term
from .schedule import unsupervised_weight


class MethodTerms(Term):
    def __init__(self, cfg: TrainConfig):
        self.cfg, self.method = cfg, METHODS.get(cfg.method)
        self.labels = {term.name: term.label for term in self.method.term_names}
        self.lambdas = {term.name: getattr(cfg, term.weight) for term in self.method.term_names}

    def weights(self, step: int) -> dict[str, float]:
        ramp = unsupervised_weight(self.cfg, step)
        return {name: ramp * value for name, value in self.lambdas.items()}

    def losses(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        return self.method.unsupervised_losses(inputs.outputs)

    def describe(self) -> str:
        return ", ".join(term.describe(getattr(self.cfg, term.weight)) for term in self.method.term_names)
