"""The optimiser and its learning rate over the run."""
from __future__ import annotations

import math

import torch

from ..config import TrainConfig
from ..config.recipe import DEFAULT_LR


def peak_lr(cfg: TrainConfig) -> float:
    """``--lr``, or, where the recipe has not chosen it yet (a config used without a Learner), the rate of a
    network that starts from random weights."""
    return cfg.lr if cfg.lr is not None else DEFAULT_LR


def learning_rate(cfg: TrainConfig, step: int, iters_per_epoch: float) -> float:
    """The learning rate at ``step``: linear warm-up, then cosine to zero, FixMatch's cosine (a
    quarter wave stopped at 7/8 of it: cos(7 pi/16) = 0.2 of lr at the last step), constant, or the
    paper's exponential decay lr * exp(-lr_decay * epoch)."""
    lr = peak_lr(cfg)
    if step < cfg.warmup_iters:
        return lr * (step + 1) / cfg.warmup_iters
    progress = (step - cfg.warmup_iters) / max(1, cfg.iters - cfg.warmup_iters)
    if cfg.schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "cosine-fixmatch":
        return lr * math.cos(7 * math.pi * progress / 16)
    if cfg.schedule == "exp":
        return lr * math.exp(-cfg.lr_decay * step / iters_per_epoch)
    return lr


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module, foreach: bool = True) -> torch.optim.Optimizer:
    # No weight decay on batch-norm parameters and biases: decaying them only hurts.
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # foreach: one multi-tensor kernel per update op instead of a Python loop over the parameters.
    # torch picks it on CUDA by itself but not on the CPU; there it gives bitwise the same weights
    # and is at most a few percent faster (benchmarks/results/speed/speed-foreach.md).
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=peak_lr(cfg), foreach=foreach)
    return torch.optim.SGD(groups, lr=peak_lr(cfg), momentum=cfg.momentum, nesterov=cfg.momentum > 0, foreach=foreach)
