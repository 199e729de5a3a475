"""The training loop around the step, in phases: the run folder (locked), the run opened (data, splits,
learner, the time budget's step count, config.yaml), restored from its checkpoint on resume (run_log.py),
the steps (step_loop.py: logging, evaluations, checkpoints, stop requests), and the final answers and
result (finish.py).

Test error is evaluated periodically and only logged; the result is the test error of the final
model (of its EMA weights when ``ema > 0``: a rule fixed in advance). Checkpoints every
``checkpoint_every`` steps and on SIGINT/SIGTERM make ``resume`` exact. Under torchrun every
process runs this loop on its shard of each step (distributed.py); rank 0 alone evaluates and
writes files, and the processes agree at every logging point on whether to stop.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from ..config import AUTO, TrainConfig, from_dict
from ..data import Dataset
from ..runtime.devices import pick_device
from ..runtime.distributed import Distributed, close_distributed, init_distributed, launched_by_torchrun
from ..errors import DataError, StochregError, UsageError
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
from ..runs.outliers import score_out_of_class
from .out_of_memory import advice_on_out_of_memory
from .run_data import Splits, as_digits_given, given_data_notes, load_run_data, make_splits
from .run_log import RunLog
from .run_settings import resolve_run_settings, settings_within_budget
from .run_folder import config_differences, finished_steps, prepare_run_folder, saved_settings, write_unreadable_list
from .state import Learner
from .step_loop import Stopped, checkpoint_saver, run_steps
from .watch import NonFiniteWatch


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


@dataclass
class OpenedRun:
    """A run ready for its first step: its resolved settings, data and splits, the learner, the checkpoint it
    resumes from (None for a new run), and what its results record of how it started."""

    cfg: TrainConfig
    data: Dataset
    splits: Splits
    learner: Learner
    state: dict[str, Any] | None
    checkpoints: CheckpointFolder
    budget: float                 # the time budget the run was started with (minutes; 0 for none)
    commit: str | None
    data_notes: list[str]         # what reading the data said (repeated images, files left out...)


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
    run = _open_run(cfg, out_dir, log, dataset, resume, device, dist, clock)
    cfg, data, learner = run.cfg, run.data, run.learner
    run_log = _restore(run, out_dir, resume, dist, log)
    processes = f" x {dist.world_size} processes" if dist.world_size > 1 else ""
    log(f"run {out_dir}: {cfg.dataset}, {len(run.splits.labelled)} labels (split seed {cfg.seeds()['split']}), "
        f"method {cfg.method}, net {cfg.net} ({count_parameters(learner.model):,} parameters), n={cfg.views}, "
        f"{cfg.iters} steps on {device}{processes}")
    metrics = MetricsLog(out_dir, tensorboard, enabled=main)
    run_log.restart_clock()
    watch = NonFiniteWatch(device, dist)
    save = checkpoint_saver(learner, run_log, run.checkpoints, watch, lambda: {
        "config": cfg.to_dict(), "recipe": learner.recipe, "image_shape": list(data.image_shape),
        "num_classes": data.num_classes, "class_names": data.class_names}, main)
    with StopRequests() as stop, metrics, advice_on_out_of_memory(cfg, data.image_shape, device.type):
        run_steps(learner, cfg, run_log, run.splits.scored, save, metrics, watch, stop, dist, device, out_dir, progress)
        train_seconds = run_log.elapsed()
        if not main:
            return None
        answers = _final_answers(run, run_log, train_seconds, metrics, device, log)
    # after the metrics log is closed: the report draws its curves from it
    return _write_results(run, run_log, train_seconds, answers, out_dir, resume, log)


def _open_run(cfg: TrainConfig, out_dir: Path, log: Callable[[str], None], dataset: Dataset | None, resume: bool,
              device: torch.device, dist: Distributed, clock: Callable[[], float]) -> OpenedRun:
    """The data, the splits and the learner of the run, the checkpoint it resumes from, the step count a time
    budget fixes (and the projected training time); the run folder's split files and config.yaml written."""
    main = dist.is_main
    commit = source_commit()  # taken now: the code that runs, not the code at the end of the run
    if device.type == "cpu":
        keep_freed_memory()
    data_notes: list[str] = []

    def log_data(line: str) -> None:
        data_notes.append(line)
        log(line)
    if dataset is not None and main:
        for note in given_data_notes(dataset):
            log_data(note)
    data = as_digits_given(dataset if dataset is not None else load_run_data(cfg, dist, log_data), cfg)
    splits = make_splits(cfg, data)
    checkpoints = CheckpointFolder(out_dir / "checkpoints", cfg.keep_checkpoints)
    # Rank 0 reads the checkpoint and sends it to the others: the run folder need not be shared.
    state = dist.broadcast(checkpoints.load_latest(warn=log) if resume and main else None)
    if state is not None and not torch.equal(state["labelled"], splits.labelled):
        raise DataError(f"the labelled split in {out_dir} differs from the one this config and data give; "
                        "was the dataset changed?")
    if main:
        (out_dir / "labelled_indices.json").write_text(json.dumps(splits.labelled.tolist()))
        write_unreadable_list(out_dir, data.left_out)
        if splits.validation is not None:
            (out_dir / "validation_indices.json").write_text(json.dumps(splits.validation.tolist()))
    # Every setting is resolved here, once: the recipe left to the data and the device, the graph check and,
    # for a time budget, the step count (a probe learner timed, then dropped); the learner reads the result.
    settings = resolve_run_settings(cfg, data, splits.labelled, device, dist)
    budget = settings.config.time_budget
    if budget > 0 and state is None:  # a resumed run's saved config holds its fixed step count already
        with advice_on_out_of_memory(settings.config, data.image_shape, device.type):  # it times real steps
            settings, step_seconds = settings_within_budget(
                settings, lambda probe: Learner(probe, data, splits.labelled, device, dist),
                lambda probe: fit_steps_to_budget(probe, budget, clock))
    if state is not None:
        check_resolved_as_saved(cfg, settings.config, state, out_dir)
    learner = Learner(settings, data, splits.labelled, device, dist)
    cfg = settings.config
    for line in [*(f"recipe: {reason}" for reason in learner.recipe), *learner.notes]:
        log(line)
    if budget > 0 and state is None:
        log(f"time budget {budget:g} min: {step_seconds:.3f} s a step, so {cfg.iters} steps (saved as iters in "
            f"config.yaml: --iters {cfg.iters} repeats this run)")
        log(projection(step_seconds, cfg.iters, max(data.image_shape[1:]), device.type))
    elif (steps_left := cfg.iters - (state["step"] if state is not None else 0)) >= PROJECTED_FROM_STEPS:
        with advice_on_out_of_memory(cfg, data.image_shape, device.type):   # a few steps timed, then undone
            step_seconds = seconds_per_step(learner, clock, PROJECTION_TIMED_STEPS)
        log(projection(step_seconds, steps_left, max(data.image_shape[1:]), device.type))
    if main:  # the resolved settings: a rerun with this file, or a resume, is exact
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return OpenedRun(cfg, data, splits, learner, state, checkpoints, budget, commit, data_notes)


def check_resolved_as_saved(given: TrainConfig, resolved: TrainConfig, state: dict[str, Any], out_dir: Path) -> None:
    """The settings a resumed run left to the data resolve to those its checkpoint was written with; else the
    data or stochreg's recipe changed under it, and it would not continue the run that was started."""
    saved = from_dict(state["config"])
    left = [k for k, v in dataclasses.asdict(given).items() if v is None or v == AUTO]
    changed = [f"{k}: {getattr(saved, k)!r} -> {getattr(resolved, k)!r}" for k in left
               if getattr(saved, k) != getattr(resolved, k)]
    if changed:
        raise UsageError(f"cannot continue {out_dir}: its settings resolve differently now ({'; '.join(changed)}): "
                         "the data or stochreg changed since it was started; start a new run (another --out)")


def _restore(run: OpenedRun, out_dir: Path, resume: bool, dist: Distributed, log: Callable[[str], None]) -> RunLog:
    """The run log to continue from: the learner's state and the log loaded from the checkpoint, if any."""
    state, learner = run.state, run.learner
    run_log = RunLog()
    if state is not None:
        learner.load_state_dict(state)
        learner.recipe = list(state.get("recipe", learner.recipe))   # why the run's settings were chosen
        run_log = RunLog.from_checkpoint(state, str(run.checkpoints.path(state["step"])))
        if run_log.start > run.cfg.iters:
            raise UsageError(f"run {out_dir} is already at step {run_log.start}, past --iters {run.cfg.iters}")
        saved_world = state.get("world_size", 1)
        if saved_world != dist.world_size:
            log(f"note: the checkpoint was written by {saved_world} process(es), this run has {dist.world_size}: "
                "batches and transformations continue unchanged, but dropout and pooling draw new random "
                "streams, so the result will not be bitwise that of an uninterrupted run")
    if dist.is_main:
        truncate_metrics(out_dir / "metrics.jsonl", run_log.start)
    if resume:
        log(f"resuming {out_dir} at step {run_log.start}" + ("" if state else " (no checkpoint yet: from the start)"))
    return run_log


def _final_answers(run: OpenedRun, run_log: RunLog, train_seconds: float, metrics: MetricsLog, device: torch.device,
                   log: Callable[[str], None]) -> tuple:
    """The final model's answers (moved to the class prior where the recipe asks) and errors, logged:
    (the prior's record, the test predictions, the single-pass test error, the final errors)."""
    cfg, data, learner, splits = run.cfg, run.data, run.learner, run.splits
    prior = (move_to_unlabelled_prior(learner, data, splits.labelled, splits.validation, splits.scored, log)
             if cfg.class_prior == "estimated" else {})
    predictions, single_pass_error, _, final = final_errors(learner, cfg, data, splits.scored, device)
    metrics.write({"step": cfg.iters, "seconds": round(train_seconds, 2), "eval_seconds": round(run_log.eval_seconds, 2),
                   **run_log.running, **final})
    return prior, predictions, single_pass_error, final


def _write_results(run: OpenedRun, run_log: RunLog, train_seconds: float, answers: tuple, out_dir: Path,
                   resume: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """The final checkpoint, results.json and the report (finish.py)."""
    prior, predictions, single_pass_error, final = answers
    notes = [line for line in [*run.data_notes, *run.learner.notes] if line.startswith("note: ")]
    outliers = score_out_of_class(run.learner.eval_model, run.data, run.splits, out_dir, run.cfg.eval_batch, run.learner.device, log)
    return write_results(out_dir, run.learner, run.cfg, run.data, run.splits.labelled, predictions, single_pass_error,
                         final, {"train": train_seconds, "eval": run_log.eval_seconds},
                         {"time_budget": run.budget, "resumed_at": run_log.start if resume else None,
                          "commit": run.commit, "notes": notes, "prior": {**prior, **outliers}}, log)

