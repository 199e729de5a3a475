"""Listing run folders (``stochreg runs``) and comparing finished runs (``stochreg compare``)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import DataError
from .lock import live_owner, training_step
from .metrics import read_metrics
from .plots import compare_curves
from ..runtime.checkpoints import CheckpointFolder


@dataclass
class RunInfo:
    folder: Path
    config: dict
    results: dict | None
    status: str

    @property
    def final_error(self) -> str:
        if not self.results:
            return "-"
        return f"{100 * self.results['test_error']:.2f}%" if self.results.get("test_error") is not None else "no test set"


def run_info(folder: Path) -> RunInfo:
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        raise DataError(f"{folder} is not a run folder (no readable config.yaml)") from None
    results = json.loads((folder / "results.json").read_text()) if (folder / "results.json").exists() else None
    if results:
        status = "done"
    elif live_owner(folder) is not None:
        step = training_step(folder)
        status = f"training (step {step}/{config.get('iters', '?')})" if step is not None else "training"
    else:
        steps = CheckpointFolder(folder / "checkpoints").steps()
        status = f"stopped at {steps[-1]}/{config.get('iters', '?')}" if steps else "no checkpoint yet"
    return RunInfo(folder, config, results, status)


def label_count(info: RunInfo) -> str:
    """How many labelled images the run trained on: its result's count, else its saved split's, else its
    setting (0 there is every labelled image of the user's own data)."""
    if info.results and info.results.get("labels") is not None:
        return str(info.results["labels"])
    try:
        return str(len(json.loads((info.folder / "labelled_indices.json").read_text())))
    except (OSError, ValueError, TypeError):
        labels = info.config.get("labels")
        return "all" if labels == 0 else str(labels)


def find_runs(root: str | Path) -> list[RunInfo]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no such folder: {root}")
    return [run_info(p.parent) for p in sorted(root.rglob("config.yaml"))]


def runs_table(infos: list[RunInfo], root: Path | None = None) -> str:
    """A markdown table, one row per run."""
    lines = ["| run | dataset | method | labels | seed | net | status | final test error | time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for info in infos:
        c = info.config
        name = str(info.folder.relative_to(root)) if root else str(info.folder)
        minutes = f"{info.results['train_seconds'] / 60:.1f} min" if info.results else "-"
        lines.append(f"| {name} | {c.get('dataset')} | {c.get('method')} | {label_count(info)} | {c.get('seed')} | "
                     f"{c.get('net')} | {info.status} | {info.final_error} | {minutes} |")
    return "\n".join(lines)


def compare(folders: list[str | Path], out_prefix: str | Path) -> tuple[Path, Path, str]:
    """Writes OUT.md (table) and OUT.png (test-error curves overlaid); returns both and the table."""
    infos = [run_info(Path(f)) for f in folders]
    for info in infos:
        if not (info.folder / "config.yaml").exists():
            raise DataError(f"{info.folder} is not a run folder")
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    png, md = out_prefix.with_suffix(".png"), out_prefix.with_suffix(".md")
    compare_curves({str(i.folder): read_metrics(i.folder / "metrics.jsonl") for i in infos}, png)
    table = runs_table(infos)
    md.write_text(f"# Comparison of {len(infos)} runs\n\n{table}\n\n![test error]({png.name})\n")
    return md, png, table
