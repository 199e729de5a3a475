"""The training loop around the step (learner.py): run folder, logging, checkpoints, result.

Test error is evaluated periodically and only logged; the result is the test error of the final
model (of its EMA weights when ``ema > 0``: a rule fixed in advance). Checkpoints every
``checkpoint_every`` steps and on SIGINT/SIGTERM make ``resume`` exact. Under torchrun every
process runs this loop on its shard of each step (distributed.py); rank 0 alone evaluates and
writes files, and the processes agree at every logging point on whether to stop.

    >>> from stochreg.config import resolve_config
    >>> result = train(resolve_config(overrides={"iters": 10}), "runs/try")  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from tqdm import tqdm

from .checkpoint import save_checkpoint
from .config import TrainConfig, default_labels, from_dict
from .data import Dataset, labelled_split, load_dataset, validation_split
from .distributed import Distributed, close_distributed, init_distributed, launched_by_torchrun
from .errors import DataError, StochregError, UsageError
from .budget import fit_steps_to_budget
from .evaluate import predict_probs, test_error
from .hostmem import keep_freed_memory
from .learner import Learner
from .metrics import MetricsLog, truncate_metrics
from .nets import count_parameters
from .recipe import with_saved_choices
from .report import write_run_report
from .resume import CheckpointFolder
from .stopping import StopRequests


def pick_device(name: str, local_rank: int | None = None) -> torch.device:
    """The device ``name`` asks for; under torchrun, ``auto`` and ``cuda`` mean this process's GPU
    (``cuda:LOCAL_RANK``), which also becomes the current device so no process touches GPU 0
    by accident."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name} asked for, but no CUDA GPU is available")
    if device.type == "cuda" and device.index is None and local_rank is not None:
        if local_rank >= torch.cuda.device_count():
            raise UsageError(f"process with LOCAL_RANK {local_rank} has no GPU: this machine has "
                             f"{torch.cuda.device_count()}; use --nproc_per_node at most that", every_rank=False)
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and device.index is None:
        # plain "cuda" is the current GPU; name it, since set_device rejects a device without an index
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def source_commit() -> str | None:
    """The git commit of the stochreg source, with "+dirty" when its files have uncommitted changes."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=here, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], capture_output=True, text=True,
                               cwd=here, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), so that wall times measured on two
    machines of the same core count are not read as one machine's."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return None


def machine_description(device: torch.device, world_size: int = 1) -> str:
    if device.type == "cuda":
        what = f"{torch.cuda.get_device_name(device)}"
    else:
        model = cpu_model_name()
        what = (f"{platform.machine()} CPU{f' ({model})' if model else ''}, {os.cpu_count()} cores, "
                f"{torch.get_num_threads()} torch threads")
    return what + (f"; {world_size} processes (torchrun)" if world_size > 1 else "")


def label_count(cfg: TrainConfig, data: Dataset) -> int:
    """``--labels``, or ``--label-fraction`` of the labelled training images when that is set."""
    if cfg.label_fraction > 0:
        return max(1, round(cfg.label_fraction * int((data.train_labels >= 0).sum())))
    return cfg.labels if cfg.labels is not None else default_labels(cfg.dataset)


def default_run_folder(cfg: TrainConfig, root: str = "runs") -> str:
    """``runs/DATASET@LABELS.sSEED-METHOD``, or that with ``-2``, ``-3``... when earlier runs hold it:
    never clobber a result. folder:ROOT and csv:FILE datasets are named after the folder or file."""
    name = Path(cfg.dataset.partition(":")[2]).stem if ":" in cfg.dataset else cfg.dataset
    labels = f"{cfg.label_fraction:g}" if cfg.label_fraction > 0 else cfg.labels or "all"
    base = f"{root}/{name}@{labels}.s{cfg.seed}-{cfg.method}"
    candidate, k = base, 1
    while Path(candidate).exists() and any(Path(candidate).iterdir()):
        k += 1
        candidate = f"{base}-{k}"
    return candidate


def prepare_run_folder(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise UsageError(f"run folder {out_dir} already exists and is not empty; choose another --out or pass --overwrite")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to run folder {out_dir}: {exc.strerror}") from None


class Stopped(StochregError):
    """The run stopped on a signal after writing a checkpoint; the CLI exits with 128 + signal."""

    def __init__(self, message: str, signal_name: str):
        super().__init__(message, every_rank=True)
        self.exit_code = 130 if signal_name == "SIGINT" else 143


class NonFiniteWatch:
    """Remembers, on the device and without synchronising, the first step at which a loss term
    stopped being finite and which terms did; ``check`` (at logging points and before every
    checkpoint, so a saved checkpoint is always good) turns that into one clear error."""

    def __init__(self, device: torch.device, dist: Distributed):
        self.dist = dist
        self.first_step = torch.tensor(-1, device=device)
        self.bad_terms = torch.zeros(0, dtype=torch.bool, device=device)   # one flag per name in self.names
        self.names: list[str] = []
        self._absent = torch.zeros((), device=device)   # the value of a term that left the step

    def observe(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        # Terms can join or leave the step (a faded graph term leaves it): track them by name.
        new_names = [name for name in losses if name not in self.names]
        if new_names:
            self.bad_terms = torch.cat([self.bad_terms, self.bad_terms.new_zeros(len(new_names))])
            self.names += new_names
        values = [losses[name].detach() if name in losses else self._absent for name in self.names]
        nonfinite = ~torch.isfinite(torch.stack(values))
        newly = (self.first_step < 0) & nonfinite.any()
        self.first_step = torch.where(newly, step, self.first_step)
        self.bad_terms = torch.where(newly, nonfinite, self.bad_terms)

    def check(self, last_good: str) -> None:
        """Raises on every rank when any rank saw a non-finite loss (a collective under torchrun)."""
        never = torch.iinfo(torch.int64).max
        first = self.dist.min(torch.where(self.first_step < 0, never, self.first_step).view(1))
        step = int(first)
        if step != never:
            bad_terms = self.dist.max(self.bad_terms.int())
            bad = ", ".join(n for n, b in zip(self.names, bad_terms.tolist()) if b)
            raise StochregError(f"loss term {bad} became NaN or infinite at step {step}; training stopped. "
                                f"Last good checkpoint: {last_good}. Lower --lr or the lambdas "
                                f"(resume with --resume RUN --force)", every_rank=True)


# Settings that change nothing about the trajectory: a resume may change them without --force.
# (The number of processes is not a setting: a run may resume under another world size.)
RESUME_SAFE_KEYS = ("checkpoint_every", "keep_checkpoints", "eval_every", "eval_batch", "device", "threads",
                    "data_dir", "tta_passes", "stream", "workers")


def config_differences(saved: TrainConfig, new: TrainConfig) -> list[str]:
    """``key: old -> new`` for every setting that differs and would change the training."""
    old, now = saved.to_dict(), new.to_dict()
    return [f"{k}: {old[k]!r} -> {now[k]!r}" for k in old if old[k] != now[k] and k not in RESUME_SAFE_KEYS]


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
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    local_rank = int(os.environ["LOCAL_RANK"]) if launched_by_torchrun() else None
    device = pick_device(cfg.device, local_rank)
    dist = init_distributed(device)
    try:
        try:
            results = _train(cfg, Path(out_dir), overwrite, progress, log, dataset, resume, tensorboard, device, dist,
                             same_settings, clock)
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
        close_distributed(dist)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _is_connection_error(exc: RuntimeError) -> bool:
    """gloo reports a peer that died as a RuntimeError about its connection."""
    text = str(exc).lower()
    return any(word in text for word in ("connection closed", "connection reset", "broken pipe", "gloo"))


def finished_steps(folder: Path) -> int | None:
    """The step count a finished run reported (its results.json beside its final checkpoint.pt),
    None while it is unfinished."""
    if not (folder / "checkpoint.pt").is_file():
        return None
    try:
        return int(json.loads((folder / "results.json").read_text())["iters"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def saved_settings(folder: Path) -> dict[str, Any] | None:
    """The settings a run folder was started with (its config.yaml), None where it has none."""
    try:
        return yaml.safe_load((folder / "config.yaml").read_text()) or None
    except (OSError, yaml.YAMLError):
        return None


def _load_data(cfg: TrainConfig, dist: Distributed, log: Callable[[str], None]) -> Dataset:
    """Loads the dataset; under torchrun the first process of each machine goes first, so that
    a missing dataset is fetched once per machine, not by every process at the same time."""
    def load() -> Dataset:
        return load_dataset(cfg.dataset, cfg.data_dir, log=log, **image_options(cfg))

    data = load() if dist.local_rank == 0 else None
    dist.barrier()
    return data if data is not None else load()


def image_options(cfg: TrainConfig) -> dict[str, Any]:
    """How the user's own images are read (folder: and csv: datasets; ignored by the others)."""
    return {"stream": cfg.stream, "image_size": cfg.image_size, "channels": cfg.channels, "holdout": cfg.holdout,
            "seed": cfg.seed}


def _train(cfg: TrainConfig, out_dir: Path, overwrite: bool, progress: bool, log: Callable[[str], None],
           dataset: Dataset | None, resume: bool, tensorboard: bool, device: torch.device,
           dist: Distributed, same_settings: bool = False,
           clock: Callable[[], float] = time.perf_counter) -> dict[str, Any] | None:
    main = dist.is_main  # rank 0 alone writes files and evaluates
    if not main:
        log, progress = (lambda message: None), False
    if main:
        prepare_run_folder(out_dir, overwrite or resume)
    if resume:
        # Rank 0 reads the run folder (the other nodes need not share it) and tells the others.
        saved, finished = dist.broadcast((saved_settings(out_dir), finished_steps(out_dir)) if main else None)
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
        if finished == cfg.iters:
            log(f"run {out_dir} is finished ({finished} steps): nothing left to do")
            return json.loads((out_dir / "results.json").read_text()) if main else None
    commit = source_commit()  # taken now: the code that runs, not the code at the end of the run
    if device.type == "cpu":
        keep_freed_memory()
    seeds = cfg.seeds()
    data = dataset if dataset is not None else _load_data(cfg, dist, log)
    if label_count(cfg, data) > len(data.train_labels):
        raise UsageError(f"--labels {cfg.labels} exceeds the {len(data.train_labels)} training images")
    # The validation images' labels only score: they are never picked as labelled.
    validation = validation_split(data.train_labels, cfg.val_size, seeds["split"]) if cfg.val_size else None
    split_labels = data.train_labels if validation is None else data.train_labels.index_fill(0, validation, -1)
    labelled = labelled_split(split_labels, label_count(cfg, data), data.num_classes, seeds["split"])
    # Data without test images (the user's own folder) trains and predicts without a test estimate.
    scored = {"test": (data.test_images, data.test_labels)} if len(data.test_labels) else {}
    if validation is not None:
        images = data.train_images
        scored["val"] = (images.subset(validation) if hasattr(images, "subset") else images[validation],
                         data.train_labels[validation])
    checkpoints = CheckpointFolder(out_dir / "checkpoints", cfg.keep_checkpoints)
    # Rank 0 reads the checkpoint and sends it to the others: the run folder need not be shared.
    state = dist.broadcast(checkpoints.load_latest(warn=log) if resume and main else None)
    if state is not None and not torch.equal(state["labelled"], labelled):
        raise DataError(f"the labelled split in {out_dir} differs from the one this config and data give; "
                        "was the dataset changed?")

    if main:
        (out_dir / "labelled_indices.json").write_text(json.dumps(labelled.tolist()))
        if validation is not None:
            (out_dir / "validation_indices.json").write_text(json.dumps(validation.tolist()))

    learner = Learner(cfg, data, labelled, device, dist)
    cfg = learner.cfg   # the settings left to the data are chosen now
    for reason in learner.recipe:
        log(f"recipe: {reason}")
    if learner.graph is not None:
        log(f"label propagation over the {len(data.train_labels):,} training images: {learner.graph_seconds:.1f} s")
    budget = cfg.time_budget
    if budget > 0 and state is None:  # a resumed run's saved config holds its fixed step count already
        iters, step_seconds = fit_steps_to_budget(learner, budget, clock)
        cfg = learner.cfg = dataclasses.replace(cfg, iters=iters, time_budget=0.0)
        log(f"time budget {budget:g} min: {step_seconds:.3f} s a step, so {iters} steps (saved as iters in "
            f"config.yaml: --iters {iters} repeats this run)")
    if main:  # the resolved settings: a rerun with this file, or a resume, is exact
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    model, ema = learner.model, learner.ema
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
        f"net {cfg.net} ({count_parameters(model):,} parameters), n={cfg.views}, {cfg.iters} steps on {device}"
        f"{processes}")
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
                "image_shape": list(data.image_shape), "num_classes": data.num_classes}))

    bar = tqdm(range(start, cfg.iters), desc="train", disable=not progress, dynamic_ncols=True, file=sys.stderr,
               initial=start, total=cfg.iters)
    with StopRequests() as stop, metrics:
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

        def predict(passes: int) -> tuple[torch.Tensor, float]:
            predicted = predict_probs(learner.eval_model, data.test_images, cfg.eval_batch, passes,
                                      device=device).argmax(1)
            return predicted, (predicted != data.test_labels).float().mean().item()

        predictions, single_pass_error, final_error = torch.zeros(0, dtype=torch.long), None, None
        if "test" in scored:
            predictions, single_pass_error = predict(1)
            final_error = single_pass_error
            if cfg.tta_passes > 1:  # the result is the k-pass average: a rule fixed in the config
                predictions, final_error = predict(cfg.tta_passes)
        final = {"test_error": final_error} if final_error is not None else {}
        if "val" in scored:  # the same rule (passes) as the test error
            final["val_error"] = test_error(learner.eval_model, *scored["val"], cfg.eval_batch, cfg.tta_passes, device)
        metrics.write({"step": cfg.iters, "seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds[0], 2),
                       **running, **final})
    save_checkpoint(out_dir / "checkpoint.pt", {
        "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
        "step": cfg.iters, "config": cfg.to_dict(), "image_shape": list(data.image_shape),
        "num_classes": data.num_classes, "class_names": data.class_names})
    results = {
        "test_error": final_error,
        "test_errors": round(final_error * len(data.test_labels)) if final_error is not None else None,
        "tta_passes": cfg.tta_passes, "test_error_single_pass": single_pass_error,
        "evaluated": "ema" if ema is not None else "final", "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds[0], 1),
        **({"val_error": final["val_error"], "val_size": cfg.val_size} if "val_error" in final else {}),
        **({"time_budget": budget} if budget > 0 else {}),
        **({"recipe": learner.recipe} if learner.recipe else {}),
        **({"graph_seconds": round(learner.graph_seconds, 1), "graph_deskewed": learner.graph_deskewed}
           if learner.graph is not None else {}),
        "iters": cfg.iters, "dataset": cfg.dataset, "labels": len(labelled), "method": cfg.method,
        "net": cfg.net, "parameters": count_parameters(model), "seed": cfg.seed, "seeds": seeds,
        "resumed_at": start if resume else None, "world_size": dist.world_size,
        "command": shlex.join(sys.argv), "commit": commit, "machine": machine_description(device, dist.world_size),
        "torch": torch.__version__,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_run_report(out_dir, cfg, results, data.test_labels.numpy(), predictions.numpy(), data.num_classes,
                     {"train": len(data.train_labels), "test": len(data.test_labels),
                      "shape": "x".join(map(str, data.image_shape))})
    if "val_error" in results:
        log(f"validation error {100 * results['val_error']:.2f}% on {cfg.val_size} labelled training images "
            "kept out of the labelled split")
    if final_error is None:
        log(f"trained {cfg.iters} steps in {train_seconds / 60:.1f} min; no test estimate (the data has no test "
            f"images: add a test/CLASS/... folder, or --holdout K); results in {out_dir / 'results.json'}")
        return results
    log(f"final test error {100 * final_error:.2f}% ({results['test_errors']} of {len(data.test_labels)}) "
        f"after {cfg.iters} steps in {train_seconds / 60:.1f} min; results in {out_dir / 'results.json'}")
    return results
