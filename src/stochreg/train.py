"""The training loop: one readable step, a run folder, the final model's test error.

Each step draws a labelled batch and an unlabelled batch, makes ``n`` stochastic views of every
unlabelled image, runs ONE forward pass over everything, and adds the method's unsupervised
terms to the cross-entropy. Test error is evaluated periodically and only logged; the result is
the test error of the final model (of its EMA weights when ``ema > 0``: a rule fixed in advance).

    >>> from stochreg.config import resolve_config
    >>> result = train(resolve_config(overrides={"iters": 10}), "runs/try")  # doctest: +SKIP
"""
from __future__ import annotations

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
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from .checkpoint import save_checkpoint
from .config import TrainConfig
from .data import Dataset, labelled_split, load_dataset
from .ema import EMA
from .errors import StochregError, UsageError
from .evaluate import images_to_float, test_error
from .hostmem import keep_freed_memory
from .methods import METHODS
from .nets import build_net, count_parameters
from .transforms import TRANSFORMS


class CyclingSampler:
    """Endless batches of indices: a fresh seeded permutation of ``indices`` each pass over them."""

    def __init__(self, indices: torch.Tensor, batch: int, generator: torch.Generator):
        self.indices, self.batch, self.generator = indices, batch, generator
        self.order, self.position = self._permutation(), 0

    def _permutation(self) -> torch.Tensor:
        return self.indices[torch.randperm(len(self.indices), generator=self.generator)]

    def next(self) -> torch.Tensor:
        taken = []
        needed = self.batch
        while needed:
            if self.position == len(self.order):
                self.order, self.position = self._permutation(), 0
            chunk = self.order[self.position:self.position + needed]
            self.position += len(chunk)
            needed -= len(chunk)
            taken.append(chunk)
        return torch.cat(taken)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name} asked for, but no CUDA GPU is available")
    return device


def learning_rate(cfg: TrainConfig, step: int, iters_per_epoch: float) -> float:
    """The learning rate at ``step``: linear warm-up, then cosine to zero, constant, or the paper's
    exponential decay lr * exp(-lr_decay * epoch)."""
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / cfg.warmup_iters
    if cfg.schedule == "cosine":
        progress = (step - cfg.warmup_iters) / max(1, cfg.iters - cfg.warmup_iters)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "exp":
        return cfg.lr * math.exp(-cfg.lr_decay * step / iters_per_epoch)
    return cfg.lr


def unsupervised_weight(cfg: TrainConfig, step: int) -> float:
    """Ramp-up of the unsupervised terms: exp(-5 (1 - t)^2) for t = step / rampup_iters < 1
    (Laine & Aila's schedule), then 1. Early on the predictions are noise; pushing them to agree
    or to be one-hot at that point would lock in the noise."""
    if step >= cfg.rampup_iters:
        return 1.0
    t = step / cfg.rampup_iters
    return math.exp(-5.0 * (1.0 - t) ** 2)


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    # No weight decay on batch-norm parameters and biases: decaying them only hurts.
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)


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


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


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


def train(cfg: TrainConfig, out_dir: str | os.PathLike, overwrite: bool = False, progress: bool = True,
          log: Callable[[str], None] = print, dataset: Dataset | None = None) -> dict[str, Any]:
    """Trains one run into ``out_dir`` and returns its results (also written to results.json)."""
    out_dir = Path(out_dir)
    prepare_run_folder(out_dir, overwrite)
    commit = source_commit()  # taken now: the code that runs, not the code at the end of the run
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    if device.type == "cpu":
        keep_freed_memory()
    seeds = cfg.seeds()
    method = METHODS.get(cfg.method)
    data = dataset if dataset is not None else load_dataset(cfg.dataset, cfg.data_dir, log=log)
    if cfg.labels > len(data.train_labels):
        raise UsageError(f"--labels {cfg.labels} exceeds the {len(data.train_labels)} training images")
    labelled = labelled_split(data.train_labels, cfg.labels, data.num_classes, seeds["split"])

    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    (out_dir / "labelled_indices.json").write_text(json.dumps(labelled.tolist()))

    torch.manual_seed(seeds["init"])
    # channels-last memory layout: measured 20-25% faster convolutions on the CPU here.
    model = build_net(cfg.net, data.image_shape, data.num_classes).to(device, memory_format=torch.channels_last)
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    optimizer = make_optimizer(cfg, model)
    transform = TRANSFORMS.get(cfg.transform)
    if transform.hflip and data.is_digits:
        raise UsageError(f"transform {cfg.transform} flips images horizontally, which changes the class of digits")

    # The whole dataset lives on the device as uint8: a batch is an index, not a copy from the host.
    train_images, train_labels = data.train_images.to(device), data.train_labels.to(device)
    data_gen = torch.Generator().manual_seed(seeds["data"])
    aug_gen = torch.Generator().manual_seed(seeds["aug"])
    torch.manual_seed(seeds["aug"])  # dropout and fractional max-pooling draw from the global RNG
    labelled_batches = CyclingSampler(labelled, cfg.batch_labelled, data_gen)
    unlabelled_batches = CyclingSampler(torch.arange(len(train_images)), cfg.batch_unlabelled, data_gen)
    n = cfg.views
    lambdas = {"ts": cfg.lambda_ts, "me": cfg.lambda_me}
    # The authors' "epoch": 2 * N_train * n batch slots (half labelled, half n-fold unlabelled).
    iters_per_epoch = 2 * len(train_images) * n / (cfg.batch_labelled + n * cfg.batch_unlabelled)

    log(f"run {out_dir}: {cfg.dataset}, {cfg.labels} labels (split seed {seeds['split']}), method {cfg.method}, "
        f"net {cfg.net} ({count_parameters(model):,} parameters), n={n}, {cfg.iters} steps on {device}")
    metrics_file = open(out_dir / "metrics.jsonl", "w")
    eval_model = lambda: ema.module if ema is not None else model
    last_error = float("nan")
    started = time.perf_counter()
    bar = tqdm(range(cfg.iters), desc="train", disable=not progress, dynamic_ncols=True, file=sys.stderr)
    running: dict[str, float] = {}
    step = 0
    try:
        for step in bar:
            lr = learning_rate(cfg, step, iters_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # --- views: labelled images once, every unlabelled image n times (view-major) ---
            idx_lb = labelled_batches.next().to(device)
            x_lb, y_lb = images_to_float(train_images[idx_lb]), train_labels[idx_lb]
            batch = [x_lb]
            if method.uses_unlabelled:
                idx_ulb = unlabelled_batches.next().to(device)
                batch.append(images_to_float(train_images[idx_ulb]).repeat(n, 1, 1, 1))
            x = transform(torch.cat(batch), aug_gen).contiguous(memory_format=torch.channels_last)
            # --- one forward pass over labelled and unlabelled views together ---
            logits = model(x)
            logits_lb = logits[:len(idx_lb)]
            losses = {"ce": F.cross_entropy(logits_lb, y_lb)}
            loss = losses["ce"]
            if method.uses_unlabelled:
                probs_ulb = torch.softmax(logits[len(idx_lb):], dim=1).view(n, cfg.batch_unlabelled, -1)
                weight = unsupervised_weight(cfg, step)
                for name, value in method.unsupervised_losses(probs_ulb).items():
                    losses[name] = value
                    loss = loss + weight * lambdas[name] * value
            # --- backward, step, EMA ---
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update(model)
            # --- log (the only host synchronisation: every 20 steps and at evaluations) ---
            is_eval = cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.iters
            if step % 20 == 0 or is_eval:
                running = {k: v.item() for k, v in losses.items()}
                if not all(math.isfinite(v) for v in running.values()):
                    bad = ", ".join(k for k, v in running.items() if not math.isfinite(v))
                    raise StochregError(f"loss term {bad} became non-finite at step {step}; "
                                        f"lower the learning rate or the lambdas")
                shown = {k: f"{v:.4f}" for k, v in running.items()}
                if not math.isnan(last_error):
                    shown["test_err"] = f"{100 * last_error:.2f}%"
                bar.set_postfix(**shown, refresh=False)
            if is_eval:
                last_error = test_error(eval_model(), data.test_images, data.test_labels,
                                        cfg.eval_batch, device=device)
                record = {"step": step + 1, "seconds": round(time.perf_counter() - started, 2), "lr": lr,
                          **running, "test_error": last_error}
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
    except KeyboardInterrupt:
        # Keep what was learnt: the weights at the interruption, next to the metrics so far.
        bar.close()
        metrics_file.close()
        save_checkpoint(out_dir / "interrupted.pt", {
            "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "step": step})
        log(f"interrupted at step {step}; weights saved in {out_dir / 'interrupted.pt'}")
        raise
    bar.close()
    train_seconds = time.perf_counter() - started

    final_error = test_error(eval_model(), data.test_images, data.test_labels, cfg.eval_batch, device=device)
    record = {"step": cfg.iters, "seconds": round(train_seconds, 2), **running, "test_error": final_error}
    metrics_file.write(json.dumps(record) + "\n")
    metrics_file.close()
    save_checkpoint(out_dir / "checkpoint.pt", {
        "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
        "step": cfg.iters, "config": cfg.to_dict(), "image_shape": list(data.image_shape),
        "num_classes": data.num_classes})
    results = {
        "test_error": final_error, "test_errors": round(final_error * len(data.test_labels)),
        "evaluated": "ema" if ema is not None else "final", "train_seconds": round(train_seconds, 1),
        "iters": cfg.iters, "dataset": cfg.dataset, "labels": cfg.labels, "method": cfg.method,
        "net": cfg.net, "parameters": count_parameters(model), "seed": cfg.seed, "seeds": seeds,
        "command": shlex.join(sys.argv), "commit": commit, "machine": machine_description(device),
        "torch": torch.__version__,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    log(f"final test error {100 * final_error:.2f}% ({results['test_errors']} of {len(data.test_labels)}) "
        f"after {cfg.iters} steps in {train_seconds / 60:.1f} min; results in {out_dir / 'results.json'}")
    return results
