"""The run folder before training: its default name, whether it may be written, what a finished
or interrupted run left in it, and which setting changes a resume refuses."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..config import AUTO, TrainConfig
from ..config.recipe import recipe_method
from ..data import is_digit_dataset
from ..errors import UsageError

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
    while Path(candidate).exists() and any(Path(candidate).iterdir()):
        k += 1
        candidate = f"{base}-{k}"
    return candidate


def prepare_run_folder(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise UsageError(f"run folder {out_dir} already exists and is not empty; choose another --out or pass --overwrite")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to run folder {out_dir}: {exc.strerror}") from None


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
