"""``stochreg suggest``: which of a run's unlabelled images to label next.

A person with a handful of labels adds them a few at a time; the next ones are worth most where the
model is unsure. The run's final model scores every image of its unlabelled pool (a folder's
``unlabelled/`` images, or a built-in dataset's training images outside the labelled and validation
splits); the images are ranked by the margin between the model's two likeliest classes (smallest
first), taking the classes the model guesses in turn, so that a class it rarely guesses still gets
its share of suggestions. This rule is fixed a priori: no benchmark of labelling rounds has chosen it
yet. ``suggestions.csv`` (path, the model's guess, its confidence, the reason) and a contact sheet
(``suggestions.png``) are written beside each other.

    >>> probs = torch.tensor([[0.9, 0.1], [0.55, 0.45], [0.4, 0.6], [0.2, 0.8]])
    >>> rank_for_labelling(probs, 3)
    [1, 2, 0]
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import Dataset
from ..errors import DataError


@dataclass
class Suggestion:
    index: int          # the image's place in the run's training set
    path: str           # its file, or "training image N" for a built-in dataset
    guess: str          # the class the model gives it
    confidence: float   # the model's probability of that class
    reason: str


def rank_for_labelling(probs: torch.Tensor, n: int) -> list[int]:
    """The rows of ``probs`` (N, classes) worth labelling first, at most ``n``: in each class the model
    guesses, its least sure rows (smallest margin between the two likeliest classes) first; the classes
    taken in turn, the one with the least sure row first."""
    if probs.shape[1] < 2 or not len(probs):
        return list(range(min(n, len(probs))))
    top = probs.topk(2, dim=1)
    margin, guess = top.values[:, 0] - top.values[:, 1], top.indices[:, 0]
    queues = []
    for cls in guess.unique().tolist():
        rows = (guess == cls).nonzero().flatten()
        queues.append(rows[margin[rows].argsort(stable=True)].tolist())
    queues.sort(key=lambda rows: (float(margin[rows[0]]), rows[0]))
    order: list[int] = []
    depth = 0
    while len(order) < n and any(depth < len(rows) for rows in queues):
        order += [rows[depth] for rows in queues if depth < len(rows)][:n - len(order)]
        depth += 1
    return order


def pool_indices(train_labels: torch.Tensor, known: list[torch.Tensor]) -> torch.Tensor:
    """The training images without a label (label -1); where every image has one (a built-in dataset),
    those outside the ``known`` index sets (the labelled and validation splits)."""
    pool = train_labels < 0
    if not bool(pool.any()):
        pool = torch.ones(len(train_labels), dtype=torch.bool)
        for indices in known:
            pool[indices] = False
    return pool.nonzero().flatten()


def unlabelled_pool(data: Dataset, run_folder: Path) -> torch.Tensor:
    """The indices of the training images the run had no label for: label -1, and (built-in datasets,
    whose every image has one) those outside its labelled and validation splits."""
    known = []
    for name in ("labelled_indices.json", "validation_indices.json"):
        try:
            known.append(torch.tensor(json.loads((run_folder / name).read_text()), dtype=torch.long))
        except FileNotFoundError:
            continue
        if len(known[-1]) and int(known[-1].max()) >= len(data.train_labels):
            raise DataError(f"{run_folder / name} lists training images beyond the {len(data.train_labels)} of "
                            f"{data.name}: the dataset changed since the run")
    indices = pool_indices(data.train_labels, known)
    if not len(indices):
        raise DataError(f"{data.name} has no unlabelled images to suggest: every training image is labelled")
    return indices


def suggestions(probs: torch.Tensor, indices: torch.Tensor, names: list[str], files: list[Path] | None,
                n: int) -> list[Suggestion]:
    """The ``n`` suggestions among the pool ``indices`` (rows of ``probs``), with their reasons."""
    rows = []
    for row in rank_for_labelling(probs, n):
        p = probs[row]
        top = p.topk(min(2, len(p)))
        first, second = top.indices.tolist() + [None] * (2 - len(top.indices))
        index = int(indices[row])
        reason = (f"unsure between {names[first]} and {names[second]} ({100 * float(p[first]):.0f}% / "
                  f"{100 * float(p[second]):.0f}%)" if second is not None else "one class only")
        path = str(files[index]) if files is not None else f"training image {index}"
        rows.append(Suggestion(index, path, names[first], round(float(p[first]), 4), reason))
    return rows


def write_suggestions(rows: list[Suggestion], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "guess", "confidence", "reason"])
        writer.writerows([(row.path, row.guess, f"{row.confidence:.4f}", row.reason) for row in rows])


def contact_sheet(images: torch.Tensor, captions: list[str], path: Path, columns: int = 10) -> Path:
    """``images`` (uint8, N x C x H x W) in their order, each with its caption above it."""
    from .plots import _pyplot
    plt = _pyplot()
    count = max(1, len(captions))
    columns = min(columns, count)
    lines = (count + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(1.3 * columns, 1.45 * lines), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, caption, image in zip(axes.flat, captions, images):
        picture = image.permute(1, 2, 0).numpy()
        if picture.shape[2] not in (1, 3):   # a stereo pair (NORB) or other channels: the first one
            picture = picture[..., :1]
        ax.imshow(picture[..., 0] if picture.shape[2] == 1 else picture, cmap="gray", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def run_folder(run_path: str | Path) -> Path:
    """The folder of a run given as its folder or as one of its checkpoint files."""
    return Path(run_path) if Path(run_path).is_dir() else Path(run_path).parent


def suggestions_path(run_path: str | Path, out: str | Path | None = None) -> Path:
    """Where the list goes: ``out``, else RUN/suggestions.csv (the contact sheet beside it, .png)."""
    return Path(out) if out else run_folder(run_path) / "suggestions.csv"


def suggest(run_path: str | Path, n: int = 100, passes: int = 1, device: str | torch.device = "cpu",
            out: str | Path | None = None) -> list[Suggestion]:
    """Ranks a run's unlabelled images for labelling and writes the ``n`` first to ``out`` (default
    RUN/suggestions.csv) with a contact sheet beside it (the same name, .png); returns them.

        >>> rows = stochreg.suggest("runs/photos", n=50)     # doctest: +SKIP
        >>> rows[0].path, rows[0].guess, rows[0].reason      # doctest: +SKIP
    """
    from ..data import load_dataset
    from ..evaluate import predict_probs
    from .trained import load_run

    if n < 1:
        raise DataError(f"--n must be at least 1, got {n}")
    run = load_run(run_path)
    cfg = run.config
    data = load_dataset(cfg.dataset, cfg.data_dir, log=lambda line: None, image_size=cfg.image_size,
                        channels=cfg.channels, holdout=cfg.holdout, seed=cfg.seed)
    if tuple(data.image_shape) != tuple(run.image_shape):
        raise DataError(f"{cfg.dataset} now reads as images of {tuple(data.image_shape)}, the run took "
                        f"{tuple(run.image_shape)}: the data changed since the run")
    indices = unlabelled_pool(data, run_folder(run_path))
    images = data.train_images[indices]
    probs = predict_probs(run.model.to(device), images, cfg.eval_batch, passes, device)
    rows = suggestions(probs, indices, run.label_names, data.train_files, n)
    out = suggestions_path(run_path, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_suggestions(rows, out)
    position = {int(index): k for k, index in enumerate(indices.tolist())}
    contact_sheet(images[[position[row.index] for row in rows]],
                  [f"{row.guess} {100 * row.confidence:.0f}%" for row in rows], out.with_suffix(".png"))
    return rows
