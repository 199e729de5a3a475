"""The run folder before training: its default name, whether it may be written, what a finished
or interrupted run left in it, and which setting changes a resume refuses."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from ..config import AUTO, TrainConfig
from ..config.recipe import recipe_method
from ..data import is_digit_dataset
from ..data.listing import UNREADABLE_LIST
from ..errors import UsageError
from ..runs.lock import LOCK_NAME

# Settings that change nothing about the trajectory: a resume may change them without --force.
# (The number of processes is not a setting: a run may resume under another world size.)
RESUME_SAFE_KEYS = ("checkpoint_every", "keep_checkpoints", "eval_every", "eval_batch", "device", "threads",
                    "data_dir", "tta_passes", "stream", "workers")


def default_run_folder(cfg: TrainConfig, root: str = "runs") -> str:
    """``runs/DATASET@LABELS.sSEED-METHOD``, or that with ``-2``, ``-3``... when earlier runs hold it:
    never clobber a result. folder:ROOT and csv:FILE datasets are named after the folder or file."""
    name = Path(cfg.dataset.partition(":")[2]).stem if ":" in cfg.dataset else cfg.dataset
    labels = f"{cfg.label_fraction:g}" if cfg.label_fraction > 0 else cfg.labels or "all"
    method = recipe_method(is_digit_dataset(cfg.dataset)) if cfg.method == AUTO else cfg.method
    base = f"{root}/{name}@{labels}.s{cfg.seed}-{method}"
    candidate, k = base, 1
    while holds_files(Path(candidate)):
        k += 1
        candidate = f"{base}-{k}"
    return candidate


def holds_files(folder: Path) -> bool:
    """Whether ``folder`` exists and holds anything but a lock left by a process that has ended."""
    return folder.is_dir() and any(p.name != LOCK_NAME for p in folder.iterdir())


def prepare_run_folder(out_dir: Path, overwrite: bool) -> None:
    if holds_files(out_dir) and not overwrite:
        raise UsageError(f"run folder {out_dir} already exists and is not empty; choose another --out or pass --overwrite")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to run folder {out_dir}: {exc.strerror}") from None


def write_unreadable_list(out_dir: Path, left_out: list[tuple[Path, str]]) -> None:
    """The unlabelled images the run left out as unreadable, as path,reason rows (none: no file)."""
    if left_out:
        with open(out_dir / UNREADABLE_LIST, "w", newline="") as f:
            csv.writer(f).writerows([("path", "reason"), *((str(file), reason) for file, reason in left_out)])


def config_differences(saved: TrainConfig, new: TrainConfig) -> list[str]:
    """``key: old -> new`` for every setting that differs and would change the training."""
    old, now = saved.to_dict(), new.to_dict()
    return [f"{k}: {old[k]!r} -> {now[k]!r}" for k in old if old[k] != now[k] and k not in RESUME_SAFE_KEYS]


def finished_steps(folder: Path) -> int | None:
    """The step count a finished run reported (its results.json beside its final checkpoint.pt),
    None while it is unfinished."""
    if not (folder / "checkpoint.pt").is_file():
        return None
    try:
        return int(json.loads((folder / "results.json").read_text())["iters"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def saved_settings(folder: Path) -> dict[str, Any] | None:
    """The settings a run folder was started with (its config.yaml), None where it has none."""
    try:
        return yaml.safe_load((folder / "config.yaml").read_text()) or None
    except (OSError, yaml.YAMLError):
        return None
