"""Saving and loading model checkpoints without ever executing code from the file.

A checkpoint is a dict of tensors and plain values written by ``torch.save`` and read back with
``torch.load(weights_only=True)``, which refuses pickled objects that would run code.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from .errors import DataError


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Writes ``state`` atomically: a temporary file, fsync, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a checkpoint with ``weights_only=True``; anything else is a clear DataError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"missing checkpoint {path}") from None
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe content"
        raise DataError(f"refusing checkpoint {path}: it is not a plain weights file ({first})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise DataError(f"corrupt checkpoint {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
