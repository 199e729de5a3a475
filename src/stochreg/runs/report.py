"""What a person reads in a finished run folder: ``summary.md``, ``curves.png``, ``confusion.png``.

    >>> print(format_minutes(754.0))
    12.6 min
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import TrainConfig
from ..config.settings import short_help
from .metrics import read_metrics
from .plots import confusion_matrix, confusion_png, learning_curves
from ..terms import CROSS_ENTROPY_LABEL, Term


def format_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def most_frequent_confusions(counts: np.ndarray, k: int = 3) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells of ``counts[true, predicted]`` as (true, predicted,
    count), largest first; cells with no error are left out."""
    off_diagonal = counts.copy()
    np.fill_diagonal(off_diagonal, 0)
    cells = zip(*np.unravel_index(np.argsort(off_diagonal, axis=None, kind="stable")[::-1][:k], counts.shape))
    return [(int(t), int(p), int(off_diagonal[t, p])) for t, p in cells if off_diagonal[t, p]]


def prior_row(results: dict[str, Any], class_names: Sequence[str]) -> str:
    """The summary's row of the class prior the answers were moved to (``--class-prior estimated``)."""
    prior = results["class_prior"]
    shares = lambda values: ", ".join(f"{name} {100 * p:.0f}%" for name, p in zip(class_names, values))
    return (f"| class prior | estimated from the unlabelled images: {shares(prior['estimated'])} (the labelled "
            f"split's: {shares(prior['labelled'])}); the final answers are moved to it |")


def recall_row(results: dict[str, Any]) -> str:
    """The summary's row of each class's recall, the balanced error and the constant answer's error."""
    recalls = ", ".join(f"{name} {100 * r:.1f}%" for name, r in results["test_recall"].items() if r is not None)
    return (f"| recall by class (test) | {recalls}; balanced error {100 * results['balanced_test_error']:.2f}%; "
            f"answering the most common class for every image errs on {100 * results['constant_test_error']:.2f}% |")


def outliers_row(found: dict[str, Any]) -> str:
    threshold = "none" if found["threshold"] is None else f"{found['threshold']:.3f}"
    return (f"| out of class | {found['flagged']} of {found['pool']} unlabelled images look like no labelled class "
            f"(score above {threshold}: {found['rule']}); ranked in `outliers.csv`, the most foreign in "
            "`outliers.png` |")


def settings_table(cfg: TrainConfig) -> list[str]:
    """The settings of ``cfg`` other than the defaults (auto ones as they were chosen), each with the
    first clause of its help, as markdown lines."""
    defaults = TrainConfig()
    changed = [f.name for f in dataclasses.fields(TrainConfig) if getattr(cfg, f.name) != getattr(defaults, f.name)]
    if not changed:
        return []
    return ["## Settings other than the defaults", "", "| setting | value | what it does |", "|---|---|---|",
            *(f"| `{name}` | {getattr(cfg, name)} | {short_help(name).replace('|', '/')} |" for name in changed), ""]


def write_run_report(run_dir: Path, cfg: TrainConfig, results: dict[str, Any], test_labels: np.ndarray,
                     predictions: np.ndarray, class_names: Sequence[str], data_info: dict[str, Any],
                     terms: Sequence[Term]) -> None:
    """The figures and the human summary of a finished run trained with ``terms``; classes are called
    by ``class_names`` (the user's class folders, or the indices as text)."""
    num_classes = len(class_names)
    title = f"{cfg.dataset}, {results['labels']} labels, {cfg.method}, seed {cfg.seed}"
    labels = {"ce": CROSS_ENTROPY_LABEL, **{name: label for term in terms for name, label in term.labels.items()}}
    learning_curves(read_metrics(run_dir / "metrics.jsonl"), run_dir / "curves.png", labels, title)
    has_test = results["test_error"] is not None
    confusions = ""
    if has_test:
        counts = confusion_matrix(test_labels, predictions, num_classes)
        confusion_png(counts, run_dir / "confusion.png", f"confusion matrix: {title}", class_names)
        confusions = ", ".join(f"{class_names[t]} taken for {class_names[p]} ({n})"
                               for t, p, n in most_frequent_confusions(counts))
    weights = ", ".join(term.describe() for term in terms)
    if terms:   # a method of one term (fixmatch) is described by that term's name already
        method_row = (f"| method | {'' if weights.startswith(cfg.method + ':') else cfg.method + ': '}{weights}, "
                      f"n={cfg.views} views per unlabelled image, ramp-up {cfg.rampup_iters} steps |")
        unlabelled_use = "all used unlabelled"
    else:
        method_row = f"| method | {cfg.method}: the labelled images alone, no unsupervised term |"
        unlabelled_use = ("the unlabelled ones only for the class prior" if results.get("class_prior")
                          else "only the labelled split trains")
    trained = (f"after {cfg.iters} steps in {format_minutes(results['train_seconds'])}"
               f" ({format_minutes(results['eval_seconds'])} of it on the logged evaluations).")
    if has_test:
        headline = (f"**Final test error: {100 * results['test_error']:.2f}%** ({results['test_errors']} of "
                    f"{len(test_labels)} test images), {results['evaluated']} weights of the final model"
                    + (f" averaged over {results['tta_passes']} stochastic passes (single pass: "
                       f"{100 * results['test_error_single_pass']:.2f}%)" if results.get("tta_passes", 1) > 1 else "")
                    + ", " + trained)
    else:
        headline = ("**No test estimate**: the data has no test images (add a test/CLASS/... folder, or "
                    f"--holdout K to keep K labelled images of each class aside); trained {trained}")
    if "val_error" in results:
        headline += (f" Validation error {100 * results['val_error']:.2f}% on {results['val_size']} labelled "
                     "training images kept out of the labelled split.")
    warnings = [f"**Warning**: {w}" for w in results.get("warnings", [])]
    lines = [
        f"# Run {run_dir.name}", "", headline, "", *(line for w in warnings for line in (w, "")),
        "| | |", "|---|---|",
        f"| data | {cfg.dataset}: {data_info['train']} training images ({unlabelled_use}), "
        f"{data_info['test']} test images, {data_info['shape']} |",
        f"| labelled split | {results['labels']} images, "
        f"{'' if results['labels'] % num_classes == 0 else 'about '}{results['labels'] // num_classes} per class, "
        f"split seed {cfg.seed} "
        "(`labelled_indices.json`) |",
        method_row,
        *([prior_row(results, class_names)] if results.get("class_prior") else []),
        *([f"| chosen from the data | {'; '.join(results['recipe'])} |"] if results.get("recipe") else []),
        *([f"| notes | {'; '.join(results['notes'])} |"] if results.get("notes") else []),
        f"| network | {cfg.net}, {results['parameters']:,} parameters |",
        f"| batches | {cfg.batch_labelled} labelled"
        + (f" + {cfg.batch_unlabelled} unlabelled x {cfg.views} views" if terms else " images a step")
        + f", transform {cfg.transform} |",
        f"| optimiser | {cfg.optimizer}, lr {cfg.lr} ({cfg.schedule}), momentum {cfg.momentum}, weight decay "
        f"{cfg.weight_decay}, EMA {cfg.ema} |",
        f"| machine | {results['machine']}, torch {results['torch']}, commit {results['commit']} |",
        f"| most frequent confusions | {confusions or 'none'} |",
        *([recall_row(results)] if results.get("test_recall") else []),
        *([outliers_row(results["outliers"])] if results.get("outliers", {}).get("pool") else []),
        "", "![learning curves](curves.png)", "", *(["![confusion matrix](confusion.png)", ""] if has_test else []),
        *settings_table(cfg),
        "Files: `config.yaml` (settings), `metrics.jsonl` (losses every 20 steps, test error at each "
        "evaluation), `checkpoint.pt` (final weights), `checkpoints/` (for `--resume`), `results.json`.",
    ]
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")
