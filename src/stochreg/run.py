"""Loading a finished run folder back: its config and a ready model (safe, weights only).

    >>> run = load_run("runs/mnist@100.s0-ts-me")   # doctest: +SKIP
    >>> run.model(images).argmax(1)                 # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from torch import nn

from .checkpoint import load_checkpoint
from .config import TrainConfig, from_dict
from .errors import DataError
from .nets import build_net


@dataclass
class Run:
    folder: Path
    config: TrainConfig
    model: nn.Module   # in eval mode, on the CPU
    weights: str       # "ema" or "final": the weights the run reported its result with


def load_run(folder: str | Path) -> Run:
    """Reads ``folder/config.yaml`` and ``folder/checkpoint.pt`` into a :class:`Run`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"run folder {folder} does not exist")
    try:
        config = from_dict(yaml.safe_load((folder / "config.yaml").read_text()) or {})
    except FileNotFoundError:
        raise DataError(f"{folder} is not a run folder (no config.yaml)") from None
    state = load_checkpoint(folder / "checkpoint.pt")
    model = build_net(config.net, tuple(state["image_shape"]), int(state["num_classes"]))
    weights = "ema" if state.get("ema") is not None else "final"
    try:
        model.load_state_dict(state["ema"] if weights == "ema" else state["model"])
    except (RuntimeError, KeyError) as exc:
        raise DataError(f"checkpoint in {folder} does not match network {config.net}: {str(exc).splitlines()[0]}") from None
    return Run(folder, config, model.eval(), weights)
