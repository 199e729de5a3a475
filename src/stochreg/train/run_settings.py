"""A run's settings, resolved once, before its learner exists, into a frozen :class:`RunSettings`.

The flags, the config file and the preset give a ``TrainConfig`` (config/load.py); here the settings left
to the data and the device are chosen (config/recipe.py), the network of a run ``--init`` starts from
taken (init_from_run.py), the settings are checked against the data and
the processes, the graph term's label-only check runs (its propagated labels kept for the term), and a
time budget's step count is fixed (a few steps of a probe learner timed). Everything after reads the
result; nothing changes it. config.yaml is written from it, and a resume resolves the same settings
from that file (the auto choices as the run made them) and checks that they are.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..augment.transforms import TRANSFORMS
from ..config import TrainConfig
from ..config.recipe import resolve_data_recipe
from ..errors import UsageError
from ..runtime.distributed import SINGLE, Distributed
from ..runtime.machine import cpu_computes_bf16
from ..terms import PropagatedLabels, resolve_graph
from .init_from_run import check_init_alone, with_init_network


@dataclass(frozen=True)
class RunSettings:
    """Every setting of a run (``config``), why each one left to the data was chosen (``reasons``), and the
    graph term's propagated labels where it is on."""

    config: TrainConfig
    reasons: tuple[str, ...] = ()
    graph: PropagatedLabels | None = None
    fade_spans_run: bool = False   # the graph fade was left to the recipe and spans the whole run

    def with_step_count(self, iters: int) -> "RunSettings":
        """The settings with the step count a time budget fixed (a fade over the whole run spans it)."""
        changes: dict[str, Any] = {"iters": iters, "time_budget": 0.0}
        if self.fade_spans_run:
            changes["graph_fade_iters"] = iters
        return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))


def check_divisible_batches(cfg: TrainConfig, world_size: int) -> None:
    """The batch sizes are global: each of the ``world_size`` ranks takes an equal share."""
    for name in ("batch_labelled", "batch_unlabelled"):
        value = getattr(cfg, name)
        if value % world_size:
            raise UsageError(f"{name} {value} is the global batch and must split evenly over the "
                             f"{world_size} processes; use a multiple of {world_size}")


def resolve_run_settings(cfg: TrainConfig, data, labelled: torch.Tensor, device: torch.device,
                         dist: Distributed = SINGLE) -> RunSettings:
    """The run's settings for this data, split, device and number of processes (no time budget applied)."""
    fade_left, given = cfg.graph_fade_iters is None, cfg
    check_init_alone(given)
    cfg, reasons = resolve_data_recipe(cfg, data.image_shape, data.is_digits,   # the auto settings
                                       native_bf16_cpu=device.type == "cpu" and cpu_computes_bf16())
    cfg, init_reasons = with_init_network(given, cfg, data.image_shape)
    reasons += init_reasons
    check_divisible_batches(cfg, dist.world_size)
    if TRANSFORMS.get(cfg.transform).hflip and data.is_digits:
        raise UsageError(f"transform {cfg.transform} flips images horizontally, which changes the class of digits")
    if cfg.precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise UsageError(f"--precision bf16 runs on CPUs and CUDA GPUs, not on {device.type}")
    cfg, graph_reason, graph = resolve_graph(cfg, data, labelled)
    return RunSettings(cfg, tuple(reasons) + ((graph_reason,) if graph_reason else ()), graph,
                       fade_spans_run=fade_left and 0 < (cfg.graph_fade_iters or 0) == cfg.iters)


def settings_within_budget(settings: RunSettings, make_probe: Callable[[RunSettings], Any],
                           time_steps: Callable[[Any], tuple[int, float]]) -> tuple[RunSettings, float]:
    """The settings with the step count that fits the time budget, and the seconds a step took: a probe
    learner built from the settings is timed (``time_steps``), then dropped."""
    probe = make_probe(settings)
    iters, step_seconds = time_steps(probe)
    del probe
    return settings.with_step_count(iters), step_seconds
