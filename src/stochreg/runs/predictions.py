"""Writing the predictions of ``stochreg predict``: a line per image on stdout, a CSV file or a JSON file.

Lines and CSV rows are written as each batch of images is classified, so that a long prediction
shows its results as they come and an interrupted one keeps those; JSON is one document, written
when the last batch is in. No file is created when no image could be classified.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import torch


class PredictionWriter:
    """Predictions of files, in the format ``out``'s suffix names (.csv or .json), or as lines
    (path, class, confidence) given to ``echo`` when ``out`` is None."""

    def __init__(self, out: Path | None, class_names: list[str], echo: Callable[[str], None] = print,
                 scored: bool = False, reject_above: float | None = None):
        """``scored``: each image comes with its out-of-class score (a last column, ``out_of_class``);
        ``reject_above``: an image scoring above it gets the class ``unknown`` (index -1)."""
        self.out, self.names, self.echo = out, class_names, echo
        self.scored, self.reject_above = scored, reject_above
        self.count = 0
        self._records: list[dict] = []
        self._csv_file = None

    def add(self, files: list[Path], probs: torch.Tensor, scores: torch.Tensor | None = None) -> None:
        predicted = probs.argmax(1).tolist()
        scores = scores.tolist() if scores is not None else [None] * len(files)
        for file, k, p, score in zip(files, predicted, probs.tolist(), scores):
            self._write(file, k, p, score)
        self.count += len(files)
        if self._csv_file:
            self._csv_file.flush()

    def _write(self, file: Path, k: int, p: list[float], score: float | None) -> None:
        rejected = self.reject_above is not None and score is not None and score > self.reject_above
        name, index = ("unknown", -1) if rejected else (self.names[k], k)
        if self.out is None:
            # the out-of-class score as a fourth column only where it decides (--reject): scripts read three
            self.echo(f"{file}\t{name}\t{p[k]:.4f}" + (f"\t{score:.4f}" if self.reject_above is not None else ""))
        elif self.out.suffix.lower() == ".json":
            # every class's probability keyed by its name, so that the file reads without the run beside it
            self._records.append({"path": str(file), "class": name, "confidence": round(p[k], 6),
                                  "predicted": index, "probabilities": dict(zip(self.names, (round(v, 6) for v in p))),
                                  **({"out_of_class": round(score, 6)} if score is not None else {})})
        else:
            if self._csv_file is None:
                self._csv_file = open(self.out, "w", newline="")
                self._csv = csv.writer(self._csv_file)
                # path, class name and confidence first; then the class index and every class's probability, p_NAME
                self._csv.writerow(["path", "class", "confidence", "predicted", *[f"p_{name}" for name in self.names],
                                    *(["out_of_class"] if self.scored else [])])
            self._csv.writerow([str(file), name, f"{p[k]:.6f}", index, *[f"{v:.6f}" for v in p],
                                *([f"{score:.6f}"] if score is not None else [])])

    def close(self) -> None:
        if self._csv_file:
            self._csv_file.close()
        if self._records:
            self.out.write_text(json.dumps(self._records, indent=1) + "\n")

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
