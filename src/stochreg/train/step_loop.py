"""The loop over the training steps: the step itself (the learner's), then, at their points, the logged
losses and evaluations, the checkpoints, and the stop a signal asks for (after a checkpoint).

Only the logging points synchronise with the device (every 20 steps and at evaluations). Under
torchrun the processes agree there on whether to stop, so that they all stop at the same step.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from ..config import TrainConfig
from ..errors import StochregError
from ..evaluate import test_error
from ..runs.metrics import MetricsLog
from ..runtime.checkpoints import CheckpointFolder
from ..runtime.distributed import Distributed
from ..runtime.stopping import StopRequests
from .run_log import RunLog
from .state import Learner
from .watch import NonFiniteWatch


class Stopped(StochregError):
    """The run stopped on a signal after writing a checkpoint; the CLI exits with 128 + signal."""

    def __init__(self, message: str, signal_name: str):
        super().__init__(message, every_rank=True)
        self.exit_code = 130 if signal_name == "SIGINT" else 143


def checkpoint_saver(learner: Learner, run_log: RunLog, checkpoints: CheckpointFolder, watch: NonFiniteWatch,
                     static: Callable[[], dict[str, Any]], main: bool) -> Callable[[int], None]:
    """``save(step_done)``: a checkpoint of the learner, the run log and ``static()`` (config, recipe, shapes,
    class names), never of weights that went NaN; under torchrun every rank calls it (a collective)."""
    def save(step_done: int) -> None:
        watch.check(run_log.last_saved)  # never write a checkpoint of weights that went NaN
        shared = learner.state_dict()  # a collective under torchrun: every rank's RNG goes to rank 0
        if main:
            run_log.last_saved = str(checkpoints.save(step_done, {
                "step": step_done, **shared, **run_log.checkpoint_fields(), **static()}))
    return save


def run_steps(learner: Learner, cfg: TrainConfig, run_log: RunLog, scored: dict, save: Callable[[int], None],
              metrics: MetricsLog, watch: NonFiniteWatch, stop: StopRequests, dist: Distributed,
              device: torch.device, out_dir: Path, progress: bool) -> None:
    """Trains from ``run_log.start`` to ``cfg.iters``; raises :class:`Stopped` after a checkpoint when a
    signal arrives before the last step."""
    main = dist.is_main
    bar = tqdm(range(run_log.start, cfg.iters), desc="train", disable=not progress, dynamic_ncols=True,
               file=sys.stderr, initial=run_log.start, total=cfg.iters)
    for step in bar:
        losses, lr = learner.step(step)
        watch.observe(step, losses)
        done = step + 1
        is_eval = cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.iters
        is_checkpoint = done == cfg.iters or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0)
        sync_point = step % 20 == 0 or is_eval
        if sync_point:
            watch.check(run_log.last_saved)
            run_log.running = dict(zip(losses, dist.mean(torch.stack(list(losses.values()))).tolist()))
            shown = {k: f"{v:.4f}" for k, v in run_log.running.items()}
            if not math.isnan(run_log.last_error):
                shown["test_err"] = f"{100 * run_log.last_error:.2f}%"
            bar.set_postfix(**shown, refresh=False)
            if not is_eval:
                metrics.write({"step": done, "seconds": round(run_log.elapsed(), 2), "lr": lr, **run_log.running})
        if is_eval and main:
            eval_started = time.perf_counter()
            errors = {f"{split}_error": test_error(learner.eval_model, images, labels, cfg.eval_batch, device=device)
                      for split, (images, labels) in scored.items()}
            run_log.last_error = errors.get("test_error", float("nan"))
            run_log.eval_seconds += time.perf_counter() - eval_started
            metrics.write({"step": done, "seconds": round(run_log.elapsed(), 2),
                           "eval_seconds": round(run_log.eval_seconds, 2), "lr": lr, **run_log.running, **errors})
        # A signal stops the run after this step; under torchrun the processes agree on it at
        # the synchronisation points (every 20 steps), so that they all stop at the same step.
        stop_now = stop.signal_name is not None
        if dist.active:
            stop_now = dist.any(stop_now, device) if sync_point or is_checkpoint else False
        if is_checkpoint or stop_now:
            save(done)
        if stop_now and done < cfg.iters:
            bar.close()
            launcher = f"torchrun --nproc_per_node {dist.world_size} -m " if dist.active else ""
            raise Stopped(f"stopped by {stop.signal_name or 'a signal to another process'} after step {done}; "
                          f"checkpoint {run_log.last_saved}; continue with: {launcher}stochreg train --resume {out_dir}",
                          stop.signal_name or "SIGTERM")
    bar.close()
