"""The run's metric log: ``metrics.jsonl`` (one JSON record per line), optionally mirrored to
TensorBoard event files, and reading it back.

Two kinds of record share the file: loss records every 20 steps (``step``, ``seconds``, ``lr``
and each loss term) and evaluation records, which also hold ``test_error``.

    >>> records = [{"step": 20, "ce": 1.0}, {"step": 500, "ce": 0.2, "test_error": 0.03}]
    >>> [r["step"] for r in evaluations(records)]
    [500]
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError, UsageError


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"damaged metrics log {path}: line {exc.lineno}") from None


def evaluations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that hold a test error."""
    return [r for r in records if "test_error" in r]


def truncate_metrics(path: Path, step: int) -> None:
    """Drops records written after ``step`` (by a run killed after its last checkpoint)."""
    if path.exists():
        kept = [r for r in read_metrics(path) if r["step"] <= step]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))


class MetricsLog:
    """Appends records to ``metrics.jsonl`` (flushed at once) and, with ``tensorboard``, writes
    every number of a record as a scalar of that name at its step. ``enabled=False`` (the
    processes other than rank 0 under torchrun) writes nothing."""

    def __init__(self, run_dir: Path, tensorboard: bool = False, enabled: bool = True):
        self.file = open(run_dir / "metrics.jsonl", "a") if enabled else None
        self.writer = None
        if tensorboard and enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UsageError("--tensorboard needs the tensorboard package: "
                                 "pip install 'stochreg[tensorboard]'") from None
            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
