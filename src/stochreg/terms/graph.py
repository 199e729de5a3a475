"""The label-propagation graph term (``--lambda-graph``): before the first step the labelled
split's labels are propagated over a neighbour graph of the training images (propagation.py); every
unlabelled view is then pulled toward its image's propagated label by a cross-entropy weighted by
the propagation's confidence. Left at auto, the term is on only where a label-only check says
the propagated labels are right enough (config/recipe.py)."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..config import TrainConfig
from ..data.streaming import FileImages
from ..errors import UsageError
from ..methods import METHODS
from .propagation import MAX_GRAPH_IMAGES, held_out_accuracy, neighbour_graph, spread
from ..losses import weighted_view_cross_entropy
from ..config.recipe import graph_decision
from .base import PrepareContext, StepInputs, Term
from .schedule import graph_fade, unsupervised_weight


@dataclass(frozen=True)
class PropagatedLabels:
    """Label propagation's label and confidence for every training image (on the CPU), how long the graph
    took, and whether it was built on deskewed images: made once, where the run's settings are resolved."""

    labels: torch.Tensor
    confidence: torch.Tensor
    seconds: float
    deskewed: bool


def resolve_graph(cfg: TrainConfig, data, labelled: torch.Tensor) \
        -> tuple[TrainConfig, str | None, PropagatedLabels | None]:
    """The graph term's weight (an auto one decided here: off for a method without unlabelled images, for
    streamed or too many images, or where the label-only check turns it down), the reason for an auto
    choice, and the propagated labels the term trains toward (None where it is off). Computed from the
    data and the split alone, so a resumed run recomputes it."""
    auto = cfg.lambda_graph is None
    if not METHODS.get(cfg.method).uses_unlabelled:
        if not auto:
            return cfg, None, None
        return _chosen(cfg, *graph_decision(None, f"method {cfg.method} trains on no unlabelled image"))
    if cfg.lambda_graph == 0:
        return cfg, None, None
    why_not = None
    if isinstance(data.train_images, FileImages):
        why_not = "the training images stay on disk (--stream); the graph needs them all in memory"
    elif len(data.train_images) > MAX_GRAPH_IMAGES:
        why_not = f"{len(data.train_images):,} training images are more than the graph's {MAX_GRAPH_IMAGES:,}"
    if auto and why_not:
        return _chosen(cfg, *graph_decision(None, why_not))
    if isinstance(data.train_images, FileImages):
        raise UsageError("--lambda-graph needs the training images in memory (it builds a neighbour graph "
                         "of all of them before training); it does not work with --stream: add --lambda-graph 0")
    channels = data.train_images.shape[1]
    if cfg.graph_deskew and channels != 1:
        raise UsageError(f"--graph-deskew is for single-channel images such as digits; {data.name} has "
                         f"{channels} channels: leave it out")
    # unset: handwritten digits only (deskewing is a digit-writing correction; unmeasured elsewhere)
    deskewed = channels == 1 and data.is_digits if cfg.graph_deskew is None else cfg.graph_deskew
    started = time.perf_counter()
    try:
        neighbours = neighbour_graph(data.train_images, deskew_images=deskewed)
    except ValueError as exc:
        raise UsageError(f"--lambda-graph: {exc}; add --lambda-graph 0") from None
    labels = data.train_labels[labelled]
    reason = None
    if auto:
        cfg, reason, _ = _chosen(cfg, *graph_decision(held_out_accuracy(neighbours, labelled, labels,
                                                                          data.num_classes)))
        if cfg.lambda_graph == 0:
            return cfg, reason, None
    graph = spread(neighbours, labelled, labels, data.num_classes)
    return cfg, reason, PropagatedLabels(graph.labels, graph.weights, time.perf_counter() - started, deskewed)


def _chosen(cfg: TrainConfig, weight: float, reason: str) -> tuple[TrainConfig, str, None]:
    return dataclasses.replace(cfg, lambda_graph=weight), reason, None


class GraphTerm(Term):
    labels = {"graph": "label-propagation graph"}

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.targets = self.confidence = None
        self.seconds, self.deskewed = 0.0, False

    def prepare(self, ctx: PrepareContext) -> bool:
        """The propagated labels the run's settings were resolved with, on the device, their confidence
        below ``--graph-min-confidence`` counted as none."""
        graph = ctx.graph
        if graph is None:   # settings resolved without the data (a term built by hand): nothing to train toward
            raise UsageError("the graph term needs the run's propagated labels: resolve the run's settings first")
        self.seconds, self.deskewed = graph.seconds, graph.deskewed   # part of the run's cost, reported beside it
        weights = graph.confidence.where(graph.confidence >= self.cfg.graph_min_confidence, 0.0)
        self.targets, self.confidence = graph.labels.to(ctx.device), weights.to(ctx.device)
        ctx.notes.append(f"label propagation over the {len(ctx.data.train_labels):,} training images: "
                         f"{self.seconds:.1f} s")
        return True

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
