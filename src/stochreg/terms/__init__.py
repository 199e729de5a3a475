"""Unsupervised terms: what the training step adds, weighted, to the labelled cross-entropy.

Every term is one object (:class:`Term`): the names of the losses it returns (as logged in
metrics.jsonl, plotted in curves.png, written to TensorBoard), their display labels, an optional
``prepare`` before the first step (label propagation, the class prior), the weight of each name at
a step (lambda, ramp-up, fade) and its losses over the step's unlabelled views. The step adds
``weight * loss`` for every term and knows none of them by name; the report, the plots and the
config check iterate the terms.

- :class:`~stochreg.terms.method.MethodTerms`: the chosen method's own losses (methods/);
- :class:`~stochreg.terms.balance.ClassBalance`: ``--lambda-balance``;
- :class:`~stochreg.terms.graph.GraphTerm`: ``--lambda-graph``, label propagation over the
  training images' neighbour graph.

A new term is a subclass in its own module and one line in :func:`build_terms`.
"""
from __future__ import annotations

from ..config import TrainConfig
from ..methods import METHODS
from .balance import ClassBalance
from .base import CROSS_ENTROPY_LABEL, PrepareContext, StepInputs, Term
from .graph import GraphTerm, PropagatedLabels, resolve_graph
from .method import MethodTerms

__all__ = ["CROSS_ENTROPY_LABEL", "ClassBalance", "GraphTerm", "MethodTerms", "PrepareContext", "PropagatedLabels",
           "StepInputs", "Term", "build_terms", "prepare_terms", "resolve_graph", "term_labels"]


def build_terms(cfg: TrainConfig) -> list[Term]:
    """The run's terms, in the order the step adds them: the method's, class balance, the graph;
    none for a method that trains on no unlabelled image. Not prepared yet."""
    method = METHODS.get(cfg.method)
    if not method.uses_unlabelled:
        return []
    terms: list[Term] = [MethodTerms(cfg)]
    if cfg.lambda_balance > 0:
        terms.append(ClassBalance(cfg))
    if cfg.lambda_graph is None or cfg.lambda_graph > 0:
        terms.append(GraphTerm(cfg))
    return terms


def term_labels(cfg: TrainConfig) -> dict[str, str]:
    """Display label of every loss a run with ``cfg`` logs, the labelled cross-entropy first."""
    labels = {"ce": CROSS_ENTROPY_LABEL}
    for term in build_terms(cfg):
        labels.update(term.labels)
    return labels


def prepare_terms(ctx: PrepareContext) -> list[Term]:
    """The run's terms, prepared, for settings already resolved (the graph term's weight among them): none
    for a method without unlabelled images."""
    if not METHODS.get(ctx.cfg.method).uses_unlabelled:
        return []
    return [term for term in build_terms(ctx.cfg) if term.prepare(ctx)]
