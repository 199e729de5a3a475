"""The chosen method's own losses (methods/) as one term: each of its names weighted by the
config field its method declares (``lambda_ts``, ``lambda_me``, else ``lambda_u``), ramped up; with
``--flex-threshold``, its pseudo-labels past per-class curriculum thresholds (curriculum.py); with
``--dist-align``, its pseudo-labels' probabilities aligned to the labelled class frequencies
(alignment.py)."""
from __future__ import annotations

import dataclasses

import torch

from ..config import TrainConfig
from ..methods import METHODS
from .alignment import DistributionAlignment
from .base import PrepareContext, StepInputs, Term, labelled_class_frequencies
from .curriculum import CurriculumThresholds
from .schedule import unsupervised_weight


class MethodTerms(Term):
    def __init__(self, cfg: TrainConfig):
        self.cfg, self.method = cfg, METHODS.get(cfg.method)
        self.labels = {term.name: term.label for term in self.method.term_names}
        self.lambdas = {term.name: getattr(cfg, term.weight) for term in self.method.term_names}
        self.curriculum: CurriculumThresholds | None = None
        self.alignment: DistributionAlignment | None = None

    def prepare(self, ctx: PrepareContext) -> bool:
        if self.cfg.flex_threshold:
            self.curriculum = CurriculumThresholds(len(ctx.data.train_images), ctx.data.num_classes,
                                                   self.cfg.threshold, ctx.device, ctx.dist)
        if self.cfg.dist_align:
            self.alignment = DistributionAlignment(labelled_class_frequencies(ctx), dist=ctx.dist)
        return True

    def weights(self, step: int) -> dict[str, float]:
        ramp = unsupervised_weight(self.cfg, step)
        return {name: ramp * value for name, value in self.lambdas.items()}

    def losses(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        outputs = inputs.outputs
        if self.alignment is None and self.curriculum is None:
            return self.method.unsupervised_losses(outputs)
        probs = self.method.pseudo_label_probabilities(outputs.logits)
        if self.alignment is not None:
            self.alignment.observe(probs)
            outputs = dataclasses.replace(outputs, target_weights=self.alignment.factors())
        if self.curriculum is not None:
            outputs = dataclasses.replace(outputs, threshold=self.curriculum.thresholds())
            self.curriculum.observe(inputs.unlabelled, probs)
        return self.method.unsupervised_losses(outputs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**(self.curriculum.state_dict() if self.curriculum is not None else {}),
                **(self.alignment.state_dict() if self.alignment is not None else {})}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.curriculum is not None:
            self.curriculum.load_state_dict(state)
        if self.alignment is not None:
            self.alignment.load_state_dict(state)

    def describe(self) -> str:
        return (", ".join(term.describe(getattr(self.cfg, term.weight)) for term in self.method.term_names)
                + (f" (FlexMatch curriculum thresholds up to {self.cfg.threshold})" if self.curriculum else "")
                + (" (pseudo-labels aligned to the labelled class frequencies)" if self.alignment else ""))
