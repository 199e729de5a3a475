"""Saving and loading checkpoints without ever executing code from the file, and the rotating
folder of training checkpoints that resume reads.

A checkpoint is a dict of tensors and plain values written by ``torch.save`` and read back with
``torch.load(weights_only=True)``, which refuses pickled objects that would run code. A training
checkpoint (``RUN/checkpoints/step-00000500.pt``) holds the model, the EMA, the optimiser, the
step, the samplers and every random number generator (rng.py); the last ``keep`` are kept, and
when the newest is damaged the one before it is used, with a warning.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import DataError, StochregError


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Writes ``state`` atomically: a temporary file, fsync, then rename over ``path``.

    A failed write (full disk, quota, permissions) removes the temporary file and leaves any
    previous file at ``path``, and every other checkpoint, untouched.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as RuntimeError
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise StochregError(f"could not write checkpoint {path}: {reason}; "
                            "the checkpoints written before it are intact") from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a checkpoint with ``weights_only=True``; anything else is a clear DataError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"missing checkpoint {path}") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise DataError(f"refusing checkpoint {path}: it holds a pickled object{what} that would run code "
                        "when loaded; only plain weights files are accepted") from None
    except (RuntimeError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"corrupt checkpoint {path}: {first}") from None


_NAME = re.compile(r"^step-(\d+)\.pt$")


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
