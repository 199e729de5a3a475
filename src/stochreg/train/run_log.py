"""What the training loop keeps about a run as it goes, in one object instead of loose counters: the
step it started from, the training seconds before a resume, the seconds spent on the logged
evaluations, the last logged error and losses, and the newest checkpoint; restored from a checkpoint
on resume, and written into each one."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunLog:
    start: int = 0                  # the step training starts (or resumes) from
    seconds_before: float = 0.0     # training seconds before this process took over (resume)
    eval_seconds: float = 0.0       # on the logged evaluations, which training does not need
    last_error: float = math.nan    # the last logged test error, shown beside the progress bar
    running: dict[str, float] = field(default_factory=dict)   # the last synchronised losses
    last_saved: str = "none"        # the newest checkpoint written or resumed from, named in messages
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], path: str) -> "RunLog":
        return cls(start=state["step"], seconds_before=state["seconds"], eval_seconds=state.get("eval_seconds", 0.0),
                   last_error=state["last_error"], running=state["running"], last_saved=path)

    def restart_clock(self) -> None:
        """Training time counts from now (after the data, the network and the projection are ready)."""
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Training seconds so far, those before a resume included."""
        return self.seconds_before + time.perf_counter() - self.started

    def checkpoint_fields(self) -> dict[str, Any]:
        """What a checkpoint keeps of the log, beside the learner's state."""
        return {"seconds": self.elapsed(), "eval_seconds": self.eval_seconds, "last_error": self.last_error,
                "running": self.running}
