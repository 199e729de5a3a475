"""Validation error of trained runs with and without averaging each image with its mirror image.

    python benchmarks/flip_average.py runs/bench/fashion400/fixmatch-crop-flip-medium-10k-s0 ...

Each run must have been trained with a validation split (``--val-size``): its
``validation_indices.json`` names the training images whose labels only score. The model the
run reported (EMA weights where it kept them) predicts those images once as they are and once
as the average of the softmax outputs for the image and its left-right mirror image. Only the
validation error is computed: this is a tuning check, the test error is reported elsewhere for
what it decides. Results: results/flip-average/RUN.json, one per run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import stochreg
from stochreg.data import load_dataset
from stochreg.evaluate import predict_probs
from stochreg.runtime.machine import machine_description

RESULTS = Path(__file__).parent / "results" / "flip-average"


def mirror_averaged(model: torch.nn.Module, images: torch.Tensor, batch: int,
                    plain: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of the softmax outputs for uint8 ``images`` and for their left-right mirror images;
    ``plain``, when given, is the images' own outputs, already computed."""
    plain = predict_probs(model, images, batch) if plain is None else plain
    return (plain + predict_probs(model, images.flip(-1), batch)) / 2


def errors(run_folder: Path) -> dict:
    """The run's validation error, single pass and mirror-averaged, with what produced them."""
    run = stochreg.load(run_folder)
    indices_file = run_folder / "validation_indices.json"
    if not indices_file.exists():
        sys.exit(f"{run_folder} has no validation split (train it with --val-size)")
    indices = torch.tensor(json.loads(indices_file.read_text()))
    data = load_dataset(run.config.dataset, run.config.data_dir, log=lambda message: None)
    images, labels = data.train_images[indices], data.train_labels[indices]
    batch = run.config.eval_batch
    plain = predict_probs(run.model, images, batch)
    averaged = mirror_averaged(run.model, images, batch, plain)
    wrong = [int((probs.argmax(1) != labels).sum()) for probs in (plain, averaged)]
    return {"run": run_folder.name, "dataset": run.config.dataset, "net": run.config.net,
            "transform": run.config.transform, "weights": run.weights, "val_size": len(indices),
            "val_error": wrong[0] / len(indices), "val_error_flip_average": wrong[1] / len(indices),
            "val_errors": wrong[0], "val_errors_flip_average": wrong[1],
            "command": "python benchmarks/flip_average.py " + str(run_folder), "machine": machine_description(torch.device("cpu"))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders trained with --val-size")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    found = [errors(folder) for folder in args.runs]
    for result in found:
        (args.results / f"{result['run']}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(f"{result['run']}: validation {100 * result['val_error']:.2f}% as it is, "
              f"{100 * result['val_error_flip_average']:.2f}% averaged with the mirror image")
    if len(found) > 1:
        mean = lambda key: 100 * sum(r[key] for r in found) / len(found)
        print(f"mean over {len(found)}: {mean('val_error'):.2f}% as it is, "
              f"{mean('val_error_flip_average'):.2f}% averaged with the mirror image")


if __name__ == "__main__":
    main()
