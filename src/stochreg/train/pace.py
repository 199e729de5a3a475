"""The projected training time, said before step 1: how long the run's steps take at the pace of a
few steps timed first (and undone, budget.py), and which settings shorten a long run.

A folder of large photos on a laptop's CPU can mean a run of many hours. The progress bar shows
the time left only once training is under way, and a user should learn before it starts what the
run will cost and what to change. The logged evaluations are not counted: they are not training.

    >>> print(projection(0.5, 1200, image_side=96, device="cpu"))
    projected training time: 1200 steps at 0.50 s a step on cpu, about 10 minutes
    >>> projection(1000.0, 959, image_side=96, device="cpu").split(";")[0]
    'projected training time: 959 steps at 1000.00 s a step on cpu, about 266.4 hours'
"""
from __future__ import annotations

LONG_RUN_MINUTES = 120.0
# Runs of fewer steps start at once: timing a few steps first would cost a noticeable part of them.
PROJECTED_FROM_STEPS = 100
TIMED_STEPS = 5
# The image side the suggestion names: the FixMatch recipe's own, measured end to end on CPUs. Its compact
# net costs about a thirtieth of ResNet-18 at 96 pixels a step; at 32 pixels the network would be WRN-28-2,
# nearly as costly as ResNet-18 there.
SMALL_SIDE = 28


def duration(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    return f"{minutes / 60:.1f} hours" if minutes >= 90 else f"{minutes:.0f} minutes"


def projection(step_seconds: float, steps: int, image_side: int, device: str) -> str:
    """The line said before step 1; for a run longer than LONG_RUN_MINUTES, with what shortens it."""
    minutes = step_seconds * steps / 60
    line = (f"projected training time: {steps} steps at {step_seconds:.2f} s a step on {device}, "
            f"{'' if minutes < 1 else 'about '}{duration(minutes)}")
    if minutes <= LONG_RUN_MINUTES:
        return line
    shorter = ["--time-budget MINUTES (as many steps as fit in that training time)"]
    if image_side > SMALL_SIDE:
        shorter.append(f"--image-size {SMALL_SIDE} (smaller images on a smaller network: a small fraction of "
                       "the cost a step)")
    shorter.append("or a GPU")
    return line + "; for a shorter run, stop it (Ctrl-C) and start again with " + ", ".join(shorter)
