"""``--time-budget MINUTES``: the step count that fits a training time, fixed before training.

The learning-rate schedule and the ramp-ups need the step count up front, so it cannot be
found by running until the time is up. Instead a few steps are timed on the run's own learner
and then undone (the learner is put back exactly as it was, random generators included), and
the step count is the budget divided by their pace. The run then trains exactly as one started
with ``--iters`` that count, which is what its saved config says.

    >>> ticks = iter(range(0, 1000, 6))                    # a fake clock: 6 s between readings
    >>> steps_that_fit(1.0, lambda: next(ticks), lambda: None, timed_steps=20)
    (200, 0.3)
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch

from ..runtime.rng import capture_global_rng, restore_global_rng

WARMUP_STEPS = 3    # the first steps pay one-off costs (allocations, kernel selection)
TIMED_STEPS = 20


def steps_that_fit(minutes: float, clock: Callable[[], float], step: Callable[[], None],
                   timed_steps: int = TIMED_STEPS) -> tuple[int, float]:
    """(step count, seconds per step): ``timed_steps`` calls of ``step`` timed with ``clock``."""
    started = clock()
    for _ in range(timed_steps):
        step()
    seconds = max((clock() - started) / timed_steps, 1e-9)
    return max(1, int(minutes * 60 / seconds)), seconds


def _snapshot(learner) -> dict[str, Any]:
    """Everything a step changes, on this process (copies, not references)."""
    return copy.deepcopy({
        "model": learner.model.state_dict(), "optimizer": learner.optimizer.state_dict(),
        "ema": learner.ema.state_dict() if learner.ema is not None else None,
        "ema_updates": learner.ema.updates if learner.ema is not None else 0,
        "samplers": learner.batches.sampler_state(), "aug": learner.aug_gen.get_state(),
        "global": capture_global_rng()})


def _restore(learner, state: dict[str, Any]) -> None:
    learner.model.load_state_dict(state["model"])
    learner.optimizer.load_state_dict(state["optimizer"])
    if learner.ema is not None:
        learner.ema.load_state_dict(state["ema"], state["ema_updates"])
    learner.batches.load_state_dict(state["samplers"], state["samplers"]["data"])
    learner.aug_gen.set_state(state["aug"])
    restore_global_rng(state["global"])
    learner.batches.prefetcher = None   # batches decoded ahead during the timing are drawn again


def fit_steps_to_budget(learner, minutes: float, clock: Callable[[], float],
                        timed_steps: int = TIMED_STEPS) -> tuple[int, float]:
    """Times ``timed_steps`` of the learner's steps, undoes them, and returns (step count, seconds per
    step), the same on every process (rank 0's measurement)."""
    before = _snapshot(learner)

    def one_step() -> None:
        losses, _ = learner.step(0)
        float(losses["ce"])   # waits for the step (a GPU runs ahead of the host otherwise)

    for _ in range(WARMUP_STEPS):
        one_step()
    iters, seconds = steps_that_fit(minutes, clock, one_step, timed_steps)
    _restore(learner, before)
    return learner.dist.broadcast((iters, seconds))


def seconds_per_step(learner, clock: Callable[[], float], timed_steps: int = TIMED_STEPS) -> float:
    """The pace of the learner's steps, timed and undone as for a budget."""
    return fit_steps_to_budget(learner, 1.0, clock, timed_steps)[1]
