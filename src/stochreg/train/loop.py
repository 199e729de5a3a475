"""The training loop around the step: run folder, resume, logging, evaluations, checkpoints, stop
requests, and the final result (finish.py).

Test error is evaluated periodically and only logged; the result is the test error of the final
model (of its EMA weights when ``ema > 0``: a rule fixed in advance). Checkpoints every
``checkpoint_every`` steps and on SIGINT/SIGTERM make ``resume`` exact. Under torchrun every
process runs this loop on its shard of each step (distributed.py); rank 0 alone evaluates and
writes files, and the processes agree at every logging point on whether to stop.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from tqdm import tqdm

from ..config import TrainConfig, from_dict
from ..data import Dataset
from ..runtime.devices import pick_device
from ..runtime.distributed import Distributed, close_distributed, init_distributed, launched_by_torchrun
from ..errors import DataError, StochregError, UsageError
from ..evaluate import test_error
from ..runtime.hostmem import keep_freed_memory
from ..runtime.machine import source_commit
from ..runs.lock import RunLock
from ..runs.metrics import MetricsLog, truncate_metrics
from ..nets import count_parameters
from ..config.recipe import with_saved_choices
from ..runtime.checkpoints import CheckpointFolder
from ..runtime.stopping import StopRequests
from .budget import fit_steps_to_budget, seconds_per_step
from .class_prior import move_to_unlabelled_prior
from .pace import PROJECTED_FROM_STEPS, TIMED_STEPS as PROJECTION_TIMED_STEPS, projection
from .finish import final_errors, write_results
from .out_of_memory import advice_on_out_of_memory
from .run_data import as_digits_given, given_data_notes, load_run_data, make_splits
from .run_folder import config_differences, finished_steps, prepare_run_folder, saved_settings, write_unreadable_list
from .state import Learner
from .watch import NonFiniteWatch


class Stopped(StochregError):
    """The run stopped on a signal after writing a checkpoint; the CLI exits with 128 + signal."""

    def __init__(self, message: str, signal_name: str):
        super().__init__(message, every_rank=True)
        self.exit_code = 130 if signal_name == "SIGINT" else 143


def train(cfg: TrainConfig, out_dir: str | os.PathLike, overwrite: bool = False, progress: bool = True,
          log: Callable[[str], None] = print, dataset: Dataset | None = None,
          resume: bool = False, tensorboard: bool = False, same_settings: bool = False,
          clock: Callable[[], float] = time.perf_counter) -> dict[str, Any] | None:
    """Trains one run into ``out_dir`` and returns its results (also written to results.json).

    With ``resume=True`` the run continues from the newest good checkpoint in
    ``out_dir/checkpoints`` (from step 0 when there is none) and ends exactly where an
    uninterrupted run would: same final weights on the CPU; a finished run is left as it is.
    ``same_settings`` refuses to continue a run saved with other settings (what
    ``--resume-if-exists`` needs: the command that started the run also continues it). Under
    torchrun, call it in every process: rank 0 returns the results, the other ranks None.
    ``clock`` times the first steps for ``cfg.time_budget`` (budget.py).

        >>> from stochreg.config import resolve_config
        >>> result = train(resolve_config(overrides={"iters": 10}), "runs/try")  # doctest: +SKIP
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    local_rank = int(os.environ["LOCAL_RANK"]) if launched_by_torchrun() else None
    device = pick_device(cfg.device, local_rank)
    dist = init_distributed(device)
    lock = RunLock(Path(out_dir))   # rank 0's: one process trains a run folder at a time
    try:
        try:
            results = _train(cfg, Path(out_dir), overwrite, progress, log, dataset, resume, tensorboard, device, dist,
                             same_settings, clock, lock)
        except Stopped:
            dist.barrier()  # every rank stops at the same agreed step: tear down together (below)
            raise
        except RuntimeError as exc:   # torch's DistError, or gloo's word for a peer that went away mid-run
            if isinstance(exc, torch.distributed.DistError) or (dist.active and _is_connection_error(exc)):
                raise StochregError(f"lost contact with another process of the job ({_first_line(exc)}); training "
                                    f"stopped. The checkpoints in {Path(out_dir) / 'checkpoints'} are intact: start "
                                    "the same command again to continue from the newest (with --resume-if-exists, "
                                    f"or stochreg train --resume {out_dir})") from None
            raise
        # The other ranks wait here while rank 0 evaluates and writes the run's files: a rank that
        # tore its gloo connections down while rank 0 still held them aborted now and then
        # ("terminate called without an active exception", SIGABRT at exit).
        dist.barrier()
        return results
    finally:
        lock.release()
        close_distributed(dist)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _is_connection_error(exc: RuntimeError) -> bool:
    """gloo reports a peer that died as a RuntimeError about its connection."""
    text = str(exc).lower()
    return any(word in text for word in ("connection closed", "connection reset", "broken pipe", "gloo"))


def _settings_to_continue(cfg: TrainConfig, out_dir: Path, dist: Distributed, same_settings: bool) \
        -> tuple[TrainConfig, int | None]:
    """The settings a resumed run continues with (its auto choices and budgeted step count as it
    made them), and the step count it finished with (None while unfinished)."""
    # Rank 0 reads the run folder (the other nodes need not share it) and tells the others.
    saved, finished = dist.broadcast((saved_settings(out_dir), finished_steps(out_dir)) if dist.is_main else None)
    if saved is not None:
        cfg = with_saved_choices(cfg, saved)   # auto settings: the choices the run made
    if saved is not None and cfg.time_budget > 0 and not saved.get("time_budget") and "iters" in saved:
        cfg = dataclasses.replace(cfg, iters=saved["iters"], time_budget=0.0)  # the count the budget fixed
    if same_settings and saved is not None:
        changed = config_differences(from_dict(saved), cfg)
        if changed:
            raise UsageError(f"cannot continue {out_dir}: it was started with other settings "
                             f"({'; '.join(changed)}); choose another --out, or pass --force to continue "
                             "with these")
    return cfg, finished


def _train(cfg: TrainConfig, out_dir: Path, overwrite: bool, progress: bool, log: Callable[[str], None],
           dataset: Dataset | None, resume: bool, tensorboard: bool, device: torch.device,
           dist: Distributed, same_settings: bool = False,
           clock: Callable[[], float] = time.perf_counter, lock: RunLock | None = None) -> dict[str, Any] | None:
    main = dist.is_main  # rank 0 alone writes files and evaluates
    if not main:
        log, progress = (lambda message: None), False
    if main:
        lock = lock or RunLock(out_dir)
        lock.check()   # before the folder is touched: a run being trained is refused as it is
        prepare_run_folder(out_dir, overwrite or resume)
        lock.acquire(log)
    if resume:
        cfg, finished = _settings_to_continue(cfg, out_dir, dist, same_settings)
        if finished == cfg.iters:
            log(f"run {out_dir} is finished ({finished} steps): nothing left to do")
            return json.loads((out_dir / "results.json").read_text()) if main else None
    commit = source_commit()  # taken now: the code that runs, not the code at the end of the run
    if device.type == "cpu":
        keep_freed_memory()
    seeds = cfg.seeds()
    data_notes: list[str] = []   # what reading the data said (repeated images, files left out...), for the report

    def log_data(line: str) -> None:
        data_notes.append(line)
        log(line)
    if dataset is not None and main:
        for note in given_data_notes(dataset):
            log_data(note)
    data = as_digits_given(dataset if dataset is not None else load_run_data(cfg, dist, log_data), cfg)
    splits = make_splits(cfg, data)
    labelled, scored = splits.labelled, splits.scored
    checkpoints = CheckpointFolder(out_dir / "checkpoints", cfg.keep_checkpoints)
    # Rank 0 reads the checkpoint and sends it to the others: the run folder need not be shared.
    state = dist.broadcast(checkpoints.load_latest(warn=log) if resume and main else None)
    if state is not None and not torch.equal(state["labelled"], labelled):
        raise DataError(f"the labelled split in {out_dir} differs from the one this config and data give; "
                        "was the dataset changed?")

    if main:
        (out_dir / "labelled_indices.json").write_text(json.dumps(labelled.tolist()))
        write_unreadable_list(out_dir, data.left_out)
        if splits.validation is not None:
            (out_dir / "validation_indices.json").write_text(json.dumps(splits.validation.tolist()))

    learner = Learner(cfg, data, labelled, device, dist)
    cfg = learner.cfg   # the settings left to the data are chosen now
    for line in [*(f"recipe: {reason}" for reason in learner.recipe), *learner.notes]:
        log(line)
    budget = cfg.time_budget
    if budget > 0 and state is None:  # a resumed run's saved config holds its fixed step count already
        with advice_on_out_of_memory(cfg, data.image_shape, device.type):  # it times real steps
            iters, step_seconds = fit_steps_to_budget(learner, budget, clock)
        cfg = learner.fix_step_count(iters)
        log(f"time budget {budget:g} min: {step_seconds:.3f} s a step, so {iters} steps (saved as iters in "
            f"config.yaml: --iters {iters} repeats this run)")
        log(projection(step_seconds, iters, max(data.image_shape[1:]), device.type))
    elif (steps_left := cfg.iters - (state["step"] if state is not None else 0)) >= PROJECTED_FROM_STEPS:
        with advice_on_out_of_memory(cfg, data.image_shape, device.type):   # a few steps timed, then undone
            step_seconds = seconds_per_step(learner, clock, PROJECTION_TIMED_STEPS)
        log(projection(step_seconds, steps_left, max(data.image_shape[1:]), device.type))
    if main:  # the resolved settings: a rerun with this file, or a resume, is exact
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    start, seconds_before, last_error, running = 0, 0.0, float("nan"), {}
    eval_seconds = [0.0]  # time spent on the logged test evaluations, which training does not need
    if state is not None:
        learner.load_state_dict(state)
        learner.recipe = list(state.get("recipe", learner.recipe))   # why the run's settings were chosen
        start, seconds_before = state["step"], state["seconds"]
        eval_seconds[0] = state.get("eval_seconds", 0.0)
        last_error, running = state["last_error"], state["running"]
        if start > cfg.iters:
            raise UsageError(f"run {out_dir} is already at step {start}, past --iters {cfg.iters}")
        saved_world = state.get("world_size", 1)
        if saved_world != dist.world_size:
            log(f"note: the checkpoint was written by {saved_world} process(es), this run has {dist.world_size}: "
                "batches and transformations continue unchanged, but dropout and pooling draw new random "
                "streams, so the result will not be bitwise that of an uninterrupted run")
    if main:
        truncate_metrics(out_dir / "metrics.jsonl", start)
    if resume:
        log(f"resuming {out_dir} at step {start}" + ("" if state else " (no checkpoint yet: from the start)"))

    processes = f" x {dist.world_size} processes" if dist.world_size > 1 else ""
    log(f"run {out_dir}: {cfg.dataset}, {len(labelled)} labels (split seed {seeds['split']}), method {cfg.method}, "
        f"net {cfg.net} ({count_parameters(learner.model):,} parameters), n={cfg.views}, {cfg.iters} steps on "
        f"{device}{processes}")
    metrics = MetricsLog(out_dir, tensorboard, enabled=main)
    started = time.perf_counter()
    elapsed = lambda: seconds_before + time.perf_counter() - started
    watch = NonFiniteWatch(device, dist)
    last_saved = [str(checkpoints.path(start)) if state is not None else "none"]

    def save_state(step_done: int) -> None:
        watch.check(last_saved[0])  # never write a checkpoint of weights that went NaN
        shared = learner.state_dict()  # a collective under torchrun: every rank's RNG goes to rank 0
        if main:
            last_saved[0] = str(checkpoints.save(step_done, {
                "step": step_done, **shared, "seconds": elapsed(), "eval_seconds": eval_seconds[0],
                "last_error": last_error, "running": running, "config": cfg.to_dict(), "recipe": learner.recipe,
                "image_shape": list(data.image_shape), "num_classes": data.num_classes,
                "class_names": data.class_names}))

    bar = tqdm(range(start, cfg.iters), desc="train", disable=not progress, dynamic_ncols=True, file=sys.stderr,
               initial=start, total=cfg.iters)
    with StopRequests() as stop, metrics, advice_on_out_of_memory(cfg, data.image_shape, device.type):
        for step in bar:
            losses, lr = learner.step(step)
            watch.observe(step, losses)
            # --- log (the only host synchronisation: every 20 steps and at evaluations) ---
            done = step + 1
            is_eval = cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.iters
            is_checkpoint = done == cfg.iters or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0)
            sync_point = step % 20 == 0 or is_eval
            if sync_point:
                watch.check(last_saved[0])
                running = dict(zip(losses, dist.mean(torch.stack(list(losses.values()))).tolist()))
                shown = {k: f"{v:.4f}" for k, v in running.items()}
                if not math.isnan(last_error):
                    shown["test_err"] = f"{100 * last_error:.2f}%"
                bar.set_postfix(**shown, refresh=False)
                if not is_eval:
                    metrics.write({"step": done, "seconds": round(elapsed(), 2), "lr": lr, **running})
            if is_eval and main:
                eval_started = time.perf_counter()
                errors = {f"{split}_error": test_error(learner.eval_model, images, labels, cfg.eval_batch,
                                                         device=device) for split, (images, labels) in scored.items()}
                last_error = errors.get("test_error", float("nan"))
                eval_seconds[0] += time.perf_counter() - eval_started
                metrics.write({"step": done, "seconds": round(elapsed(), 2), "eval_seconds": round(eval_seconds[0], 2),
                               "lr": lr, **running, **errors})
            # A signal stops the run after this step; under torchrun the processes agree on it at
            # the synchronisation points (every 20 steps), so that they all stop at the same step.
            stop_now = stop.signal_name is not None
            if dist.active:
                stop_now = dist.any(stop_now, device) if sync_point or is_checkpoint else False
            if is_checkpoint or stop_now:
                save_state(done)
            if stop_now and done < cfg.iters:
                bar.close()
                launcher = f"torchrun --nproc_per_node {dist.world_size} -m " if dist.active else ""
                raise Stopped(f"stopped by {stop.signal_name or 'a signal to another process'} after step {done}; "
                              f"checkpoint {last_saved[0]}; continue with: {launcher}stochreg train --resume {out_dir}",
                              stop.signal_name or "SIGTERM")
        bar.close()
        train_seconds = elapsed()
        if not main:
            return None
        prior = (move_to_unlabelled_prior(learner, data, labelled, splits.validation, scored, log)
                 if cfg.class_prior == "estimated" else {})
        predictions, single_pass_error, _, final = final_errors(learner, cfg, data, scored, device)
        metrics.write({"step": cfg.iters, "seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds[0], 2),
                       **running, **final})
    return write_results(out_dir, learner, cfg, data, labelled, predictions, single_pass_error, final,
                         {"train": train_seconds, "eval": eval_seconds[0]},
                         {"time_budget": budget, "resumed_at": start if resume else None, "commit": commit,
                          "notes": [line for line in [*data_notes, *learner.notes] if line.startswith("note: ")],
                          "prior": prior}, log)
