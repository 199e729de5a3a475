"""The trainable state of a run: the model, its EMA, the optimiser, the random generators, the
batches, the view plan and the unsupervised terms, with ``state_dict``/``load_state_dict``
capturing everything the next step depends on, for exact resume. ``learner.step(i)`` is the
one training step (step.py); the training loop (loop.py) and the speed benchmark use it."""
from __future__ import annotations

from typing import Any

import torch

from ..config import TrainConfig
from ..data import Dataset
from ..data.split import unbalanced_labels_note
from ..runtime.distributed import SINGLE, Distributed
from ..runtime.precision import forward_precision
from .ema import EMA
from ..errors import UsageError
from ..methods import METHODS
from ..nets import build_net, preferred_memory_format
from ..pretrained import start_from_weights
from ..runtime.rng import capture_global_rng, restore_global_rng
from ..terms import PrepareContext, Term, prepare_terms
from .batches import Batches
from .schedule import make_optimizer
from .step import training_step
from .init_from_run import load_init_weights
from .run_settings import RunSettings, resolve_run_settings
from .view_plan import ViewPlan

# Offset between the per-rank seeds of dropout and pooling (rank 0 keeps the run's own seed).
RANK_SEED_STRIDE = 100_003


class Learner:
    """Model, EMA, optimiser, batches, view plan, terms and generators of one run, built from its resolved
    settings (run_settings.py), which it reads and never changes; a plain TrainConfig is resolved first."""

    def __init__(self, settings: RunSettings | TrainConfig, data: Dataset, labelled: torch.Tensor,
                 device: torch.device, dist: Distributed = SINGLE):
        if isinstance(settings, TrainConfig):   # a learner made directly (benchmarks, tests)
            settings = resolve_run_settings(settings, data, labelled, device, dist)
        cfg = settings.config
        self.settings, self.cfg, self.recipe = settings, cfg, list(settings.reasons)
        self.device, self.labelled, self.dist = device, labelled, dist
        seeds = cfg.seeds()
        self.method = METHODS.get(cfg.method)
        torch.manual_seed(seeds["init"])
        model = build_net(cfg.net, data.image_shape, data.num_classes, cfg.dropout)
        started_from = (load_init_weights(model, cfg.init, data.label_names) if cfg.init
                        else start_from_weights(model, cfg.net, cfg.weights, cfg.data_dir))
        self.memory_format = preferred_memory_format(model)  # channels-last where it is faster
        self.model = model.to(device, memory_format=self.memory_format)
        self.ema = EMA(self.model, cfg.ema) if cfg.ema > 0 else None
        self.optimizer = make_optimizer(cfg, self.model)
        self.batches = Batches(cfg, data.train_images, data.train_labels, labelled, self.method.uses_unlabelled,
                               seeds["data"], device, dist)
        self.aug_gen = torch.Generator().manual_seed(seeds["aug"])
        # Dropout and fractional max-pooling draw from the global RNG: one stream per rank, rank 0's
        # being the single-process one.
        torch.manual_seed(seeds["aug"] + RANK_SEED_STRIDE * dist.rank)
        context = PrepareContext(cfg, data, labelled, device, dist=dist, graph=settings.graph)
        self.terms = prepare_terms(context)
        self.notes = context.notes
        if started_from:
            self.notes.append(f"network {cfg.net} starts from {started_from}")
        if self.method.uses_unlabelled and len(data.train_images) == len(labelled):
            self.notes.append(f"note: no unlabelled images: the unlabelled terms of {cfg.method} see only the "
                              f"{len(labelled)} labelled ones; images without labels (a folder's unlabelled/, "
                              "label -1 in arrays) are what semi-supervised training learns from")
        unbalanced = unbalanced_labels_note(data.train_labels[labelled], data.num_classes, data.class_names)
        self.notes += [unbalanced] if unbalanced else []
        self.local_labelled = cfg.batch_labelled // dist.world_size
        self.local_unlabelled = cfg.batch_unlabelled // dist.world_size
        # rows of the views that only give targets, run apart without gradient (--separate-targets),
        # by the EMA weights with --teacher-targets
        apart = cfg.separate_targets or cfg.teacher_targets
        self.target_rows = self.local_unlabelled * self.method.target_views if apart else 0
        self.views = ViewPlan(self.cfg, self.method, self.local_labelled, self.local_unlabelled, device, dist)
        self.forward_model = self._wrap(self.model) if dist.active else self.model
        # The authors' "epoch": 2 * N_train * n batch slots (half labelled, half n-fold unlabelled).
        self.iters_per_epoch = 2 * len(data.train_images) * cfg.views / (cfg.batch_labelled + cfg.views * cfg.batch_unlabelled)

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
        return training_step(self, step)

    def term(self, name: str) -> Term | None:
        """The run's term that returns the loss ``name``, None where the run has none."""
        return next((term for term in self.terms if name in term.names), None)

    def term_results(self) -> dict[str, Any]:
        """What the terms add to results.json (the graph's cost, for example)."""
        return {key: value for term in self.terms for key, value in term.results().items()}

    def state_dict(self) -> dict[str, Any] | None:
        """The state every rank shares, plus every rank's own dropout/pooling RNG (gathered on
        rank 0, so this is a collective call under torchrun; None on the other ranks)."""
        global_rngs = self.dist.gather(capture_global_rng())
        if global_rngs is None:
            return None
        batches = self.batches.state_dict()
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "optimizer": self.optimizer.state_dict(), "labelled": self.labelled,
            "samplers": batches["samplers"], "terms": [term.state_dict() for term in self.terms],
            "rng": {"data": batches["data"], "aug": self.aug_gen.get_state(),
                    "global": global_rngs[0], "other_ranks": global_rngs[1:]},
            "world_size": self.dist.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"], state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.load_state_dict(state["samplers"], state["rng"]["data"])
        for term, term_state in zip(self.terms, state.get("terms", [{}] * len(self.terms))):
            term.load_state_dict(term_state)
        self.aug_gen.set_state(state["rng"]["aug"])
        per_rank = [state["rng"]["global"], *state["rng"].get("other_ranks", [])]
        if self.dist.rank < len(per_rank):
            restore_global_rng(per_rank[self.dist.rank])
        else:  # a rank the checkpoint did not have: a fresh stream, derived from the seed and the step
            torch.manual_seed(self.cfg.seeds()["aug"] + RANK_SEED_STRIDE * self.dist.rank + state["step"])
