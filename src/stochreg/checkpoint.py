"""Saving and loading model checkpoints without ever executing code from the file.

A checkpoint is a dict of tensors and plain values written by ``torch.save`` and read back with
``torch.load(weights_only=True)``, which refuses pickled objects that would run code.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .errors import DataError, StochregError


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
