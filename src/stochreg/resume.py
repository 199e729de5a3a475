"""What exact resume needs: every RNG state as plain tensors, and the rotating checkpoint folder.

A training checkpoint (``RUN/checkpoints/step-00000500.pt``) holds the model, the EMA, the
optimiser, the step, the samplers and every random number generator, all as tensors and plain
values, so it loads with ``torch.load(weights_only=True)``. The last ``keep`` are kept; when the
newest is damaged the one before it is used, with a warning.

    >>> state = capture_global_rng()
    >>> a = torch.rand(3); restore_global_rng(state); torch.equal(a, torch.rand(3))
    True
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import DataError

_NAME = re.compile(r"^step-(\d+)\.pt$")


def capture_global_rng() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy and python RNG states, as weights-only-safe values."""
    version, mt_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(mt_state), "gauss": gauss},
    }


def restore_global_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))


class CheckpointFolder:
    """``RUN/checkpoints``: numbered training checkpoints, newest last, at most ``keep`` of them."""

    def __init__(self, folder: Path, keep: int = 2):
        self.folder, self.keep = Path(folder), keep

    def path(self, step: int) -> Path:
        return self.folder / f"step-{step:08d}.pt"

    def steps(self) -> list[int]:
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.folder.iterdir() if (m := _NAME.match(p.name)))

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Writes atomically, then deletes all but the newest ``keep`` (never before the write succeeded)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(step)
        save_checkpoint(path, state)
        for old in self.steps()[:-self.keep]:
            self.path(old).unlink(missing_ok=True)
        return path

    def load_latest(self, warn: Callable[[str], None]) -> dict[str, Any] | None:
        """The newest checkpoint that loads and holds a training state; damaged ones are skipped
        with a warning. None when there is none at all."""
        for leftover in self.folder.glob("*.tmp") if self.folder.is_dir() else []:
            leftover.unlink()  # a write killed before its rename: never a valid checkpoint
        for step in reversed(self.steps()):
            try:
                state = load_checkpoint(self.path(step))
                if not isinstance(state, dict) or state.get("step") != step or "optimizer" not in state:
                    raise DataError(f"{self.path(step)} is not a stochreg training checkpoint")
                return state
            except DataError as exc:
                warn(f"warning: skipping damaged checkpoint: {exc}")
        return None
