"""PNG figures of a run: learning curves, confusion matrix, and curves of several runs overlaid.

matplotlib with its file-only Agg backend (no display needed), imported when a figure is drawn.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _log_percent_axis(ax) -> None:
    """A log y axis labelled 0.5, 1, 2... rather than 5x10^-1."""
    from matplotlib.ticker import FuncFormatter
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "1235" else ""))


def learning_curves(records: list[dict[str, Any]], path: str | Path, labels: dict[str, str], title: str = "") -> Path:
    """Loss terms (left: each name of ``labels`` the records hold, with its label) and test error
    (right) against training steps."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for key, label in labels.items():
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            left.plot(*zip(*points), label=label)
    left.set_xlabel("step"), left.set_ylabel("loss"), left.set_title("training losses")
    left.legend(loc="best", fontsize=8), left.grid(alpha=0.3)
    evals = [(r["step"], 100 * r["test_error"]) for r in records if "test_error" in r]
    if evals:
        right.plot(*zip(*evals), marker="o", markersize=3)
        if min(e for _, e in evals) > 0:  # a log scale shows the last halvings of the error
            _log_percent_axis(right)
        right.annotate(f"final {evals[-1][1]:.2f}%", evals[-1], textcoords="offset points", xytext=(-60, 10))
    right.set_xlabel("step"), right.set_ylabel("test error (%)"), right.set_title("test error (logged only)")
    right.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def confusion_png(counts: np.ndarray, path: str | Path, title: str = "",
                  class_names: Sequence[str] | None = None) -> Path:
    """The confusion matrix with counts in the cells, its rows and columns named by ``class_names``
    (default: the indices); the diagonal is drawn separately so that the errors, which are few, stay
    visible. A long title is wrapped to the figure's width."""
    plt = _pyplot()
    k = len(counts)
    errors = counts.astype(float).copy()
    np.fill_diagonal(errors, np.nan)
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
    image = ax.imshow(errors, cmap="Reds", vmin=0, vmax=max(1, np.nanmax(errors)))
    fig.colorbar(image, ax=ax, label="misclassified test images")
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="tab:blue" if i == j else "black")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    font = font_with_glyphs("".join(names))
    numbered = font is False   # no font here draws these names (Chinese ones without a CJK font): numbers instead
    if numbered:
        names = [str(i) for i in range(k)]
    size = max(4, min(10, 200 // k))   # a hundred classes' names still fit beside each other
    ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 3 else 0, fontsize=size,
                  fontproperties=font or None)
    ax.set_yticks(range(k), names, fontsize=size, fontproperties=font or None)
    ax.set_xlabel("predicted class" + (" (classes numbered from 0 in the order of their names)" if numbered else ""))
    ax.set_ylabel("true class")
    ax.set_title(textwrap.fill(title or "confusion matrix (final model, test set)", 60), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


# Font families that cover the scripts matplotlib's own DejaVu Sans lacks (Chinese, Japanese, Korean...)
WIDE_FONTS = ("Noto Sans CJK", "Noto Sans", "Source Han Sans", "WenQuanYi", "Droid Sans Fallback", "Arial Unicode",
              "Microsoft YaHei", "PingFang", "Hiragino", "Malgun Gothic", "Unifont")


def font_with_glyphs(text: str):
    """None where matplotlib's default font draws every character of ``text``; else the properties of an
    installed font that does; False where none does."""
    from matplotlib.font_manager import FontProperties, findfont, fontManager, get_font

    def draws(path: str) -> bool:
        try:
            font = get_font(path)
        except (OSError, RuntimeError):
            return False
        return all(font.get_char_index(ord(ch)) for ch in set(text) if not ch.isspace())

    if draws(findfont(FontProperties())):
        return None
    for entry in fontManager.ttflist:
        if entry.name.startswith(WIDE_FONTS) and draws(entry.fname):
            return FontProperties(fname=entry.fname)
    return False


def compare_curves(curves: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Test error against steps, one line per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for label, records in curves.items():
        evals = [(r["step"], 100 * r["test_error"]) for r in records if "test_error" in r]
        if evals:
            ax.plot(*zip(*evals), marker="o", markersize=3, label=label)
    if all(r["test_error"] > 0 for records in curves.values() for r in records if "test_error" in r):
        _log_percent_axis(ax)
    ax.set_xlabel("step"), ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, which="both"), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
