"""A note early in a long run: how long its steps will take at the pace of the first ones, and
which settings shorten it.

A folder of large photos on a laptop's CPU can mean a run of many hours. The progress bar shows
the time left only where it is shown, and a user who sees it should learn at once what to change.
So a run times its steps after the first ones (which pay one-off costs) and, if the steps left
would take longer than ``LONG_RUN_MINUTES``, says so once, with the settings that shorten it.
The evaluations logged meanwhile are not counted: they are not training.

    >>> ticks = iter([0.0, 20_000.0])                  # a fake clock: 1,000 s a step
    >>> notes = []
    >>> pace = LongRunNote(start=0, iters=1000, image_side=96, device="cpu", clock=lambda: next(ticks),
    ...                    log=notes.append)
    >>> for done in (1, 21, 41):
    ...     pace.at_sync(done, eval_seconds=0.0)
    >>> notes[0].split(";")[0]
    'note: at 1000.0 s a step on cpu, the 959 steps left take about 266.4 hours'
"""
from __future__ import annotations

from typing import Callable

LONG_RUN_MINUTES = 120.0
SKIPPED_STEPS = 20   # one-off costs: allocations, kernel selection, the first batches decoded
TIMED_STEPS = 20
# The image side the suggestion names: the FixMatch recipe's own, measured end to end on CPUs. Its compact
# net costs about a thirtieth of ResNet-18 at 96 pixels a step; at 32 pixels the network would be WRN-28-2,
# nearly as costly as ResNet-18 there.
SMALL_SIDE = 28


def duration(minutes: float) -> str:
    return f"{minutes / 60:.1f} hours" if minutes >= 90 else f"{minutes:.0f} minutes"


class LongRunNote:
    """Call :meth:`at_sync` at the loop's synchronisation points (the host has waited for the
    device there, so the clock reads finished work); it logs at most one note."""

    def __init__(self, start: int, iters: int, image_side: int, device: str, clock: Callable[[], float],
                 log: Callable[[str], None]):
        self.start, self.iters, self.image_side, self.device = start, iters, image_side, device
        self.clock, self.log = clock, log
        self.timed_from: tuple[int, float] | None = None
        self.finished = iters - start <= SKIPPED_STEPS + TIMED_STEPS

    def at_sync(self, done: int, eval_seconds: float) -> None:
        if self.finished:
            return
        if self.timed_from is None:
            if done - self.start >= SKIPPED_STEPS:
                self.timed_from = (done, self.clock() - eval_seconds)
            return
        first, started = self.timed_from
        if done - first < TIMED_STEPS:
            return
        self.finished = True
        step_seconds = (self.clock() - eval_seconds - started) / (done - first)
        left = self.iters - done
        minutes = step_seconds * left / 60
        if minutes > LONG_RUN_MINUTES:
            self.log(self.message(step_seconds, left, minutes))

    def message(self, step_seconds: float, left: int, minutes: float) -> str:
        shorter = ["--time-budget MINUTES (as many steps as fit in that training time)"]
        if self.image_side > SMALL_SIDE:
            shorter.append(f"--image-size {SMALL_SIDE} (smaller images on a smaller network: a small fraction of "
                           "the cost a step)")
        shorter.append("or a GPU")
        return (f"note: at {step_seconds:.1f} s a step on {self.device}, the {left} steps left take about "
                f"{duration(minutes)}; for a shorter run, stop it (Ctrl-C) and start again with "
                + ", ".join(shorter))
