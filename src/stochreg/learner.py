"""The trainable state of a run and its one training step, apart from logging and files.

A :class:`Learner` owns the model, its EMA, the optimiser, the data on the device, the samplers
and the random generators. ``learner.step(i)`` is one optimisation step of any method: draw a
labelled batch and an unlabelled batch, make ``n`` stochastic views of every unlabelled image
(view-major), run ONE forward pass over everything, add the method's unsupervised terms to the
cross-entropy, step. ``state_dict``/``load_state_dict`` capture everything the next step
depends on, for exact resume. The training loop (train.py) and the speed benchmark use this
same step.

Under torchrun (distributed.py) each rank computes its shard of the same global step: the batch
indices and transformation parameters are drawn for the global batch on every rank and sliced,
and DistributedDataParallel averages the gradients.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
import torch.nn.functional as F

from .config import TrainConfig
from .data import Dataset
from .data.streaming import FileImages, Prefetcher
from .devices import to_device
from .distributed import SINGLE, Distributed
from .ema import EMA
from .errors import UsageError
from .evaluate import images_to_float
from .graph import MAX_GRAPH_IMAGES, held_out_accuracy, neighbour_graph, spread
from .losses import class_balance, weighted_view_cross_entropy
from .methods import METHODS, Outputs
from .randaugment import RandAugment
from .nets import build_net, preferred_memory_format
from .recipe import graph_decision, resolve_data_recipe
from .resume import capture_global_rng, restore_global_rng
from .transforms import TRANSFORMS


def forward_precision(device: torch.device, precision: str):
    """The context the forward passes run in: bfloat16 autocast for ``bf16``, nothing for ``fp32``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


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

    def state_dict(self) -> dict[str, Any]:
        """The current pass's order and position. The order is a reference, not a copy: a new pass
        replaces it and nothing changes it in place (the generator is saved by its owner)."""
        return {"order": self.order, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order, self.position = state["order"], int(state["position"])


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


def graph_fade(cfg: TrainConfig, step: int) -> float:
    """Factor on the graph term's weight: (1 + cos(pi t)) / 2 for t = step / graph_fade_iters < 1,
    then 0; always 1 when graph_fade_iters is 0."""
    if cfg.graph_fade_iters <= 0:
        return 1.0
    if step >= cfg.graph_fade_iters:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * step / cfg.graph_fade_iters))


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module, foreach: bool = True) -> torch.optim.Optimizer:
    # No weight decay on batch-norm parameters and biases: decaying them only hurts.
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # foreach: one multi-tensor kernel per update op instead of a Python loop over the parameters.
    # torch picks it on CUDA by itself but not on the CPU. There it gives bitwise the same weights
    # and is at most a few percent faster (3% on the bare step timed interleaved with the loop;
    # within noise in speed.py's sgd-loop row, results/speed-foreach.md).
    if cfg.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=cfg.lr, foreach=foreach)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, foreach=foreach)


# Offset between the per-rank seeds of dropout and pooling (rank 0 keeps the run's own seed).
RANK_SEED_STRIDE = 100_003


def check_divisible_batches(cfg: TrainConfig, world_size: int) -> None:
    """The batch sizes are global: each of the ``world_size`` ranks takes an equal share."""
    for name in ("batch_labelled", "batch_unlabelled"):
        value = getattr(cfg, name)
        if value % world_size:
            raise UsageError(f"{name} {value} is the global batch and must split evenly over the "
                             f"{world_size} processes; use a multiple of {world_size}")


class Learner:
    """Model, EMA, optimiser, device-resident data, samplers and generators of one run."""

    def __init__(self, cfg: TrainConfig, data: Dataset, labelled: torch.Tensor, device: torch.device,
                 dist: Distributed = SINGLE):
        cfg, self.recipe = resolve_data_recipe(cfg, data.image_shape, data.is_digits)  # the auto settings
        self.cfg, self.device, self.labelled, self.dist = cfg, device, labelled, dist
        seeds = cfg.seeds()
        check_divisible_batches(cfg, dist.world_size)
        self.method = METHODS.get(cfg.method)
        self.transform = TRANSFORMS.get(cfg.transform)
        if self.transform.hflip and data.is_digits:
            raise UsageError(f"transform {cfg.transform} flips images horizontally, which changes the class of digits")
        torch.manual_seed(seeds["init"])
        model = build_net(cfg.net, data.image_shape, data.num_classes)
        self.memory_format = preferred_memory_format(model)  # channels-last where it is faster
        self.model = model.to(device, memory_format=self.memory_format)
        self.ema = EMA(self.model, cfg.ema) if cfg.ema > 0 else None
        self.optimizer = make_optimizer(cfg, self.model)
        # The whole dataset lives on the device as uint8: a batch is an index, not a host copy.
        self.images, self.labels = data.train_images.to(device), data.train_labels.to(device)
        self.data_gen = torch.Generator().manual_seed(seeds["data"])
        self.aug_gen = torch.Generator().manual_seed(seeds["aug"])
        # Dropout and fractional max-pooling draw from the global RNG: one stream per rank, rank 0's
        # being the single-process one.
        torch.manual_seed(seeds["aug"] + RANK_SEED_STRIDE * dist.rank)
        self.labelled_batches = CyclingSampler(labelled, cfg.batch_labelled, self.data_gen)
        self.unlabelled_batches = CyclingSampler(torch.arange(len(self.images)), cfg.batch_unlabelled, self.data_gen)
        # The class frequencies the unlabelled predictions should average to: the labelled split's.
        self.class_prior = (torch.bincount(self.labels[labelled.to(device)], minlength=data.num_classes).float()
                            / len(labelled)) if cfg.lambda_balance > 0 else None
        self.graph = None
        if cfg.lambda_graph is None or (cfg.lambda_graph > 0 and self.method.uses_unlabelled):
            self.graph = self._graph_labels(data, labelled)
        cfg = self.cfg   # the graph's weight, when it was auto, is now chosen
        self.lambdas = {"ts": cfg.lambda_ts, "me": cfg.lambda_me, "balance": cfg.lambda_balance,
                        "graph": cfg.lambda_graph}
        self.local_labelled = cfg.batch_labelled // dist.world_size
        self.local_unlabelled = cfg.batch_unlabelled // dist.world_size
        self.view_rows = self._view_rows() if dist.world_size > 1 else None
        self.forward_model = self._wrap(self.model) if dist.active else self.model
        if cfg.precision == "bf16" and device.type not in ("cpu", "cuda"):
            raise UsageError(f"--precision bf16 runs on CPUs and CUDA GPUs, not on {device.type}")
        self.prefetcher = None
        self.strong = RandAugment() if self.method.strong_views else None
        if self.strong is not None:  # rows from here on (labelled, then view-major blocks) are strong views
            self.first_strong_row = self.local_labelled + self.method.first_strong_view(cfg.views) * self.local_unlabelled
        # The authors' "epoch": 2 * N_train * n batch slots (half labelled, half n-fold unlabelled).
        self.iters_per_epoch = 2 * len(self.images) * cfg.views / (cfg.batch_labelled + cfg.views * cfg.batch_unlabelled)

    def _graph_labels(self, data: Dataset, labelled: torch.Tensor):
        """Label propagation's label and confidence for every training image, on the device
        (graph.py), or None where an auto graph term is left out. Computed from the data and the
        split alone, so a resumed run recomputes it."""
        auto = self.cfg.lambda_graph is None
        why_not = None
        if not self.method.uses_unlabelled:
            why_not = f"method {self.cfg.method} trains on no unlabelled image"
        elif isinstance(data.train_images, FileImages):
            why_not = "the training images stay on disk (--stream); the graph needs them all in memory"
        elif len(data.train_images) > MAX_GRAPH_IMAGES:
            why_not = f"{len(data.train_images):,} training images are more than the graph's {MAX_GRAPH_IMAGES:,}"
        if auto and why_not:
            self._choose_graph(*graph_decision(None, why_not))
            return None
        if isinstance(data.train_images, FileImages):
            raise UsageError("--lambda-graph needs the training images in memory (it builds a neighbour graph "
                             "of all of them before training); it does not work with --stream: add --lambda-graph 0")
        channels = data.train_images.shape[1]
        if self.cfg.graph_deskew and channels != 1:
            raise UsageError(f"--graph-deskew is for single-channel images such as digits; {data.name} has "
                             f"{channels} channels: leave it out")
        # unset: handwritten digits only (deskewing is a digit-writing correction; unmeasured elsewhere)
        self.graph_deskewed = channels == 1 and data.is_digits if self.cfg.graph_deskew is None else self.cfg.graph_deskew
        started = time.perf_counter()
        try:
            neighbours = neighbour_graph(data.train_images, deskew_images=self.graph_deskewed)
        except ValueError as exc:
            raise UsageError(f"--lambda-graph: {exc}; add --lambda-graph 0") from None
        labels = data.train_labels[labelled]
        if auto:
            self._choose_graph(*graph_decision(held_out_accuracy(neighbours, labelled, labels, data.num_classes)))
            if self.cfg.lambda_graph == 0:
                return None
        graph = spread(neighbours, labelled, labels, data.num_classes)
        self.graph_seconds = time.perf_counter() - started  # part of the run's cost, reported beside it
        weights = graph.weights.where(graph.weights >= self.cfg.graph_min_confidence, 0.0)
        return graph.labels.to(self.device), weights.to(self.device)

    def _choose_graph(self, weight: float, reason: str) -> None:
        self.cfg = dataclasses.replace(self.cfg, lambda_graph=weight)
        self.recipe.append(reason)

    def _view_rows(self) -> torch.Tensor:
        """Which rows of the global view batch (labelled, then n unlabelled blocks) this rank owns."""
        cfg, shard_lb, shard_ulb = self.cfg, self.dist.shard(self.cfg.batch_labelled), self.dist.shard(self.cfg.batch_unlabelled)
        rows = [torch.arange(cfg.batch_labelled)[shard_lb]]
        if self.method.uses_unlabelled:
            for view in range(cfg.views):
                start = cfg.batch_labelled + view * cfg.batch_unlabelled
                rows.append(torch.arange(start, start + cfg.batch_unlabelled)[shard_ulb])
        return torch.cat(rows).to(self.device)

    def _wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel
        if self.cfg.sync_bn and self.dist.world_size > 1:
            if self.device.type != "cuda":
                raise UsageError("--sync-bn needs GPUs: torch's SyncBatchNorm runs on CUDA devices only")
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.model = model  # the EMA keeps its plain copy; the weights and buffers are the same
        device_ids = [self.device] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights the result is reported with: the EMA when on, else the model itself."""
        return self.ema.module if self.ema is not None else self.model

    def autocast(self):
        """The forward passes' precision context (--precision)."""
        return forward_precision(self.device, self.cfg.precision)

    def step(self, step: int) -> tuple[dict[str, torch.Tensor], float]:
        """One optimisation step; returns the loss terms (tensors, not synchronised) and the lr."""
        cfg, n = self.cfg, self.cfg.views
        lr = learning_rate(cfg, step, self.iters_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # --- views: labelled images once, every unlabelled image n times (view-major) ---
        idx_lb, images_lb, idx_ulb, images_ulb = self.next_images()
        batch = [images_to_float(images_lb)]
        if self.method.uses_unlabelled:
            batch.append(images_to_float(images_ulb).repeat(n, 1, 1, 1))
        x = self.transform_views(torch.cat(batch)).contiguous(memory_format=self.memory_format)
        # --- one forward pass over labelled and unlabelled views together ---
        with self.autocast():
            logits = self.forward_model(x)
        logits = logits.float()  # the losses in float32 whatever the forward pass ran in
        losses = {"ce": F.cross_entropy(logits[:len(idx_lb)], self.labels[idx_lb])}
        loss = losses["ce"]
        if self.method.uses_unlabelled:
            shape = (n, self.local_unlabelled, -1)
            teacher_logits = None
            if self.method.needs_teacher:  # the EMA weights on the same views, with their own noise, no gradient
                with torch.no_grad():
                    self.ema.module.train()
                    with self.autocast():
                        teacher_logits = self.ema.module(x[len(idx_lb):]).float().view(shape)
                    self.ema.module.eval()
            outputs = Outputs(logits[len(idx_lb):].view(shape), teacher_logits, cfg.threshold)
            weight = unsupervised_weight(cfg, step)
            terms = self.method.unsupervised_losses(outputs)
            if self.class_prior is not None:
                terms["balance"] = class_balance(torch.softmax(outputs.logits, dim=-1), self.class_prior)
            fade = graph_fade(cfg, step)
            if self.graph is not None and fade > 0:  # every view of an image toward its label-propagation label
                labels, weights = self.graph
                terms["graph"] = weighted_view_cross_entropy(outputs.logits, labels[idx_ulb], weights[idx_ulb])
            for name, value in terms.items():
                losses[name] = value
                loss = loss + weight * self.lambdas.get(name, cfg.lambda_u) * (fade if name == "graph" else 1.0) * value
        # --- backward, step, EMA ---
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return {k: v.detach() for k, v in losses.items()}, lr

    def draw_indices(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's labelled and unlabelled indices: every rank draws the global batch and keeps
        its shard, so the images are the same whatever the world size."""
        idx_lb = self.labelled_batches.next()[self.dist.shard(self.cfg.batch_labelled)]
        if not self.method.uses_unlabelled:
            return idx_lb, None
        return idx_lb, self.unlabelled_batches.next()[self.dist.shard(self.cfg.batch_unlabelled)]

    def sampler_state(self) -> dict[str, Any]:
        """Where the samplers stand (cheap enough to take before every step's draw)."""
        return {"labelled": self.labelled_batches.state_dict(), "unlabelled": self.unlabelled_batches.state_dict(),
                "data": self.data_gen.get_state()}

    def next_images(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(labelled indices, labelled uint8 images, unlabelled indices, unlabelled uint8 images) on
        the device: indexed from the device-resident dataset, or decoded ahead by DataLoader
        workers (--stream)."""
        if not isinstance(self.images, FileImages):
            idx_lb, idx_ulb = self.draw_indices()
            idx_lb = to_device(idx_lb, self.device)
            idx_ulb = to_device(idx_ulb, self.device) if idx_ulb is not None else None
            images_ulb = self.images[idx_ulb] if idx_ulb is not None else None
            return idx_lb, self.images[idx_lb], idx_ulb, images_ulb
        if self.prefetcher is None:  # made at the first step, after a resume has set the samplers
            self.prefetcher = Prefetcher(self.images, self.draw_indices, self.sampler_state, self.cfg.workers)
        idx_lb, images_lb, idx_ulb, images_ulb = self.prefetcher.next()
        return (to_device(idx_lb, self.device), to_device(images_lb, self.device),
                to_device(idx_ulb, self.device) if idx_ulb is not None else None,
                to_device(images_ulb, self.device) if images_ulb is not None else None)

    def transform_views(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the random transformation to this rank's views: parameters are drawn for the
        global batch (identical on every rank) and this rank's rows applied."""
        x = self._augment(self.transform, x)
        if self.strong is not None:  # the method's last views of the unlabelled images: weak, then strong
            strong_rows = torch.zeros(len(x), dtype=torch.bool, device=x.device)
            strong_rows[self.first_strong_row:] = True
            x = torch.where(strong_rows.view(-1, 1, 1, 1), self._augment(self.strong, x), x)
        return x

    def _augment(self, augment, x: torch.Tensor) -> torch.Tensor:
        if getattr(augment, "is_identity", False):
            return x
        if self.view_rows is None:
            return augment(x, self.aug_gen)
        rows = len(self.view_rows) * self.dist.world_size
        params = augment.sample(rows, self.aug_gen, self.device)
        return augment.apply(x, {k: v[self.view_rows] for k, v in params.items()})

    def state_dict(self) -> dict[str, Any]:
        """The state every rank shares, plus every rank's own dropout/pooling RNG (gathered on
        rank 0, so this is a collective call under torchrun; None on the other ranks)."""
        global_rngs = self.dist.gather(capture_global_rng())
        if global_rngs is None:
            return None
        # Batches decoded ahead but not trained on yet are drawn again after a resume.
        samplers = self.prefetcher.state_of_next_step() if self.prefetcher is not None else self.sampler_state()
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "optimizer": self.optimizer.state_dict(), "labelled": self.labelled,
            "samplers": {name: {"order": samplers[name]["order"].clone(), "position": samplers[name]["position"]}
                         for name in ("labelled", "unlabelled")},
            "rng": {"data": samplers["data"], "aug": self.aug_gen.get_state(),
                    "global": global_rngs[0], "other_ranks": global_rngs[1:]},
            "world_size": self.dist.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"], state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.labelled_batches.load_state_dict(state["samplers"]["labelled"])
        self.unlabelled_batches.load_state_dict(state["samplers"]["unlabelled"])
        self.data_gen.set_state(state["rng"]["data"])
        self.aug_gen.set_state(state["rng"]["aug"])
        per_rank = [state["rng"]["global"], *state["rng"].get("other_ranks", [])]
        if self.dist.rank < len(per_rank):
            restore_global_rng(per_rank[self.dist.rank])
        else:  # a rank the checkpoint did not have: a fresh stream, derived from the seed and the step
            torch.manual_seed(self.cfg.seeds()["aug"] + RANK_SEED_STRIDE * self.dist.rank + state["step"])
