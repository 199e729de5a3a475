"""Images that look like none of the labelled classes: each unlabelled image's out-of-class score at the
end of a run, and the same score for any image ``predict`` is given.

A person's unlabelled folder holds things of no class (empty frames, hands, other products). The score
of an image is 1 minus the cosine similarity between its learnt features (the input of the network's
last linear layer) and those of the nearest labelled training image, the nearest-neighbour rule of Sun
et al. (ICML 2022) with k = 1: near 0 for an image with a labelled look-alike, up to 2 for one unlike
every labelled image. The threshold above which an image counts as out of class is the score that
``KEEP`` (95%) of known-class images stay under, taken on held-out images of the classes: the
validation split where the run has one (``--val-size``); else the labelled images, each scored against
the other labelled ones (leave one out). The network was trained on those, so new images of their
classes sit a little farther off: there the threshold rejects more than 5% of them, and the rule
says so. Both rules are fixed a priori.

A run writes ``outliers.csv`` (every unlabelled image, most foreign first: path, score, the class of
its nearest labelled image, the model's guess), ``outliers.png`` (the most foreign ones) and
``outliers.safetensors`` (the labelled images' features and the threshold, which ``predict`` reads).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset
from ..errors import DataError
from ..evaluate import learnt_features

REFERENCE, LIST, SHEET = "outliers.safetensors", "outliers.csv", "outliers.png"
KEEP = 0.95
SHEET_IMAGES = 30
CHUNK = 4096


def nearest_labelled(features: torch.Tensor, reference: torch.Tensor, leave_one_out: bool = False,
                     chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's out-of-class score against the ``reference`` rows and the index of its nearest one;
    ``leave_one_out``: ``features`` are the reference itself, and no row is its own neighbour."""
    reference = F.normalize(reference.float(), dim=1)
    scores, nearest = [], []
    for start in range(0, len(features), chunk):
        similarity = F.normalize(features[start:start + chunk].float(), dim=1) @ reference.T
        if leave_one_out:
            rows = torch.arange(len(similarity))
            similarity[rows, rows + start] = -2.0
        best, index = similarity.max(dim=1)
        scores.append(1 - best)
        nearest.append(index)
    if not scores:
        return torch.zeros(0), torch.zeros(0, dtype=torch.long)
    return torch.cat(scores).clamp(min=0.0), torch.cat(nearest)


def threshold_rule(held_out: torch.Tensor, labelled_features: torch.Tensor) -> tuple[float, str]:
    """The threshold and the words that say how it was chosen: on the ``held_out`` (validation) images'
    features where there are any, else on the labelled ones, left out one at a time."""
    if len(held_out):
        scores, _ = nearest_labelled(held_out, labelled_features)
        rule = f"{100 * KEEP:.0f}% of the {len(held_out)} validation images score under it"
    else:
        scores, _ = nearest_labelled(labelled_features, labelled_features, leave_one_out=True)
        rule = (f"{100 * KEEP:.0f}% of the {len(labelled_features)} labelled images, each scored against the others, "
                "stay under it; new images of the classes score a little higher, so more than 5% of them may be "
                "rejected")
    if len(scores) < 2:
        return float("inf"), "too few labelled images to choose a threshold: no image is called out of class"
    return float(torch.quantile(scores, KEEP)), rule


def find_outliers(model: nn.Module, data: Dataset, labelled: torch.Tensor, validation: torch.Tensor | None,
                  pool: torch.Tensor, names: list[str], out_dir: Path, batch: int, device: torch.device) -> dict:
    """Scores the unlabelled ``pool`` (indices into the training images) against the ``labelled`` ones, writes
    the list, the contact sheet and the reference; returns what results.json keeps."""
    from safetensors.torch import save_file
    from .suggest import contact_sheet

    images = data.train_images
    labelled_features, _ = learnt_features(model, images[labelled], batch, device)
    held_out = learnt_features(model, images[validation], batch, device)[0] if validation is not None else \
        torch.zeros(0)
    threshold, rule = threshold_rule(held_out, labelled_features)
    save_file({"labelled_features": labelled_features.contiguous()}, str(out_dir / REFERENCE),
              metadata={"threshold": repr(threshold), "rule": rule})
    summary = {"threshold": round(threshold, 6) if threshold != float("inf") else None, "rule": rule}
    if not len(pool):
        return {"outliers": {**summary, "flagged": 0, "pool": 0}}
    # a few thousand images at a time: the pool of a large folder is not copied whole
    parts = [learnt_features(model, images[pool[start:start + CHUNK]], batch, device)
             for start in range(0, len(pool), CHUNK)]
    pool_features, pool_probs = torch.cat([f for f, _ in parts]), torch.cat([p for _, p in parts])
    scores, nearest = nearest_labelled(pool_features, labelled_features)
    labelled_classes = data.train_labels[labelled]
    order = scores.argsort(descending=True, stable=True)
    files = data.train_files
    with open(out_dir / LIST, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "out_of_class_score", "out_of_class", "nearest_labelled_class", "guess",
                         "confidence"])
        for row in order.tolist():
            index = int(pool[row])
            guess = int(pool_probs[row].argmax())
            writer.writerow([str(files[index]) if files is not None else f"training image {index}",
                             f"{float(scores[row]):.4f}", "yes" if scores[row] > threshold else "no",
                             names[int(labelled_classes[nearest[row]])], names[guess],
                             f"{float(pool_probs[row, guess]):.4f}"])
    top = order[:SHEET_IMAGES]
    contact_sheet(images[pool[top]], [f"{float(scores[row]):.2f}" for row in top.tolist()], out_dir / SHEET)
    return {"outliers": {**summary, "flagged": int((scores > threshold).sum()), "pool": len(pool)}}


def score_out_of_class(model: nn.Module, data: Dataset, splits, out_dir: Path, batch: int, device: torch.device,
                       log: Callable[[str], None]) -> dict:
    """The end of a run: its unlabelled images' out-of-class scores written and said in one line (where it
    has none, the reference alone, for predict); nothing where its images are not in memory (``--stream``). ``splits`` has the
    run's ``labelled`` and ``validation`` (or None) indices."""
    from .suggest import pool_indices
    labelled, validation = splits.labelled, splits.validation
    if not isinstance(data.train_images, torch.Tensor) or not len(labelled):
        return {}
    pool = pool_indices(data.train_labels, [labelled] + ([validation] if validation is not None else []))
    found = find_outliers(model, data, labelled, validation, pool, data.label_names, out_dir, batch, device)
    if not len(pool):   # nothing to rank; the reference is kept for predict --reject
        return found
    log(f"{found['outliers']['flagged']} of {len(pool)} unlabelled images look out of class (ranked in "
        f"{out_dir / LIST}, the most foreign drawn in {SHEET})")
    return found


def load_reference(run_folder: Path) -> tuple[torch.Tensor, float | None]:
    """The labelled images' features and the threshold a run chose; an error says how to get them."""
    from safetensors import safe_open
    path = Path(run_folder) / REFERENCE
    if not path.is_file():
        raise DataError(f"{run_folder} has no {REFERENCE} (runs trained before out-of-class scores, or with --stream, have none): "
                        "train it again to score images out of class")
    with safe_open(str(path), "pt") as f:
        threshold = float(f.metadata().get("threshold", "inf"))
        return f.get_tensor("labelled_features"), (None if threshold == float("inf") else threshold)


def out_of_class_scores(model: nn.Module, images: torch.Tensor, reference: torch.Tensor, batch: int = 1000,
                        device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities, out-of-class scores) of uint8 ``images`` from one pass."""
    features, probs = learnt_features(model, images, batch, device)
    return probs, nearest_labelled(features, reference)[0]
