"""The label-propagation graph term (``--lambda-graph``): before the first step the labelled
split's labels are propagated over a neighbour graph of the training images (propagation.py); every
unlabelled view is then pulled toward its image's propagated label by a cross-entropy weighted by
the propagation's confidence. Left at auto, the term is on only where a label-only check says
the propagated labels are right enough (config/recipe.py)."""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from ..config import TrainConfig
from ..data.streaming import FileImages
from ..errors import UsageError
from .propagation import MAX_GRAPH_IMAGES, held_out_accuracy, neighbour_graph, spread
from ..losses import weighted_view_cross_entropy
from ..config.recipe import graph_decision
from .base import PrepareContext, StepInputs, Term
from .schedule import graph_fade, unsupervised_weight


class GraphTerm(Term):
    labels = {"graph": "label-propagation graph"}

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.targets = self.confidence = None
        self.seconds, self.deskewed = 0.0, False

    def prepare(self, ctx: PrepareContext) -> bool:
        """Label propagation's label and confidence for every training image, on the device.
        Computed from the data and the split alone, so a resumed run recomputes it."""
        cfg, data, labelled = ctx.cfg, ctx.data, ctx.labelled
        auto = cfg.lambda_graph is None
        why_not = None
        if isinstance(data.train_images, FileImages):
            why_not = "the training images stay on disk (--stream); the graph needs them all in memory"
        elif len(data.train_images) > MAX_GRAPH_IMAGES:
            why_not = f"{len(data.train_images):,} training images are more than the graph's {MAX_GRAPH_IMAGES:,}"
        if auto and why_not:
            return self._choose(ctx, *graph_decision(None, why_not))
        if isinstance(data.train_images, FileImages):
            raise UsageError("--lambda-graph needs the training images in memory (it builds a neighbour graph "
                             "of all of them before training); it does not work with --stream: add --lambda-graph 0")
        channels = data.train_images.shape[1]
        if cfg.graph_deskew and channels != 1:
            raise UsageError(f"--graph-deskew is for single-channel images such as digits; {data.name} has "
                             f"{channels} channels: leave it out")
        # unset: handwritten digits only (deskewing is a digit-writing correction; unmeasured elsewhere)
        self.deskewed = channels == 1 and data.is_digits if cfg.graph_deskew is None else cfg.graph_deskew
        started = time.perf_counter()
        try:
            neighbours = neighbour_graph(data.train_images, deskew_images=self.deskewed)
        except ValueError as exc:
            raise UsageError(f"--lambda-graph: {exc}; add --lambda-graph 0") from None
        labels = data.train_labels[labelled]
        if auto and not self._choose(ctx, *graph_decision(held_out_accuracy(neighbours, labelled, labels,
                                                                            data.num_classes))):
            return False
        graph = spread(neighbours, labelled, labels, data.num_classes)
        self.seconds = time.perf_counter() - started  # part of the run's cost, reported beside it
        weights = graph.weights.where(graph.weights >= ctx.cfg.graph_min_confidence, 0.0)
        self.targets, self.confidence = graph.labels.to(ctx.device), weights.to(ctx.device)
        ctx.notes.append(f"label propagation over the {len(data.train_labels):,} training images: {self.seconds:.1f} s")
        return True

    def _choose(self, ctx: PrepareContext, weight: float, reason: str) -> bool:
        ctx.cfg = self.cfg = dataclasses.replace(ctx.cfg, lambda_graph=weight)
        ctx.recipe.append(reason)
        return weight > 0

    def results(self) -> dict[str, Any]:
        return {"graph_seconds": round(self.seconds, 1), "graph_deskewed": self.deskewed}

    def weights(self, step: int) -> dict[str, float] | None:
        fade = graph_fade(self.cfg, step)
        if fade <= 0:
            return None
        return {"graph": unsupervised_weight(self.cfg, step) * self.cfg.lambda_graph * fade}

    def losses(self, inputs: StepInputs) -> dict[str, torch.Tensor]:
        """Every view of an image toward its label-propagation label."""
        index = inputs.unlabelled
        return {"graph": weighted_view_cross_entropy(inputs.outputs.logits, self.targets[index],
                                                     self.confidence[index])}

    def describe(self) -> str:
        return (f"label-propagation graph: lambda={self.cfg.lambda_graph}"
                + (f" fading to 0 at step {self.cfg.graph_fade_iters}" if self.cfg.graph_fade_iters else "")
                + (" (deskewed images)" if self.deskewed else ""))
