"""Where a finished run's errors come from: the error analysis of benchmarks/tuning.md (2026-11-30).

    python benchmarks/error_analysis.py RUN... [--reference RUN] [--feature-graph] [--passes 16]
    python benchmarks/error_analysis.py RUN_A RUN_B --ensemble       # two runs of one split, averaged

For each run (a `stochreg train` folder on a dataset whose training images all have labels):
- its errors on the test set and on the training images it used unlabelled, with the most
  frequent confusions of each (the pool's errors show which styles the labelled split lacks);
- with --reference (a run trained on every label, such as results/tuning/supervised-all-labels.json's): how many of its test
  errors the reference makes too (hard for the network) and the confusions of the others;
- with --passes K: the test error averaging K stochastic passes (test-time averaging);
- with --feature-graph: label propagation (graph.py, the settings of --lambda-graph) over the
  run's learnt features (the input of its last linear layer) instead of the pixels: how many of
  the run's pool errors it would fix and how many right labels it would break;
- with --ensemble: the test error of the runs' averaged probabilities and their shared errors.
Prints one JSON object per run (and one for the ensemble).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from stochreg.data import load_dataset
from stochreg.evaluate import learnt_features, predict_probs
from stochreg.terms.propagation import propagate_labels
from stochreg.runs.plots import confusion_matrix
from stochreg.runs.report import most_frequent_confusions
from stochreg.runs.trained import Run, load_run


def confusions(labels: torch.Tensor, predicted: torch.Tensor, classes: int, k: int = 5) -> list[str]:
    counts = confusion_matrix(labels.numpy(), predicted.numpy(), classes)
    return [f"{t}->{p}: {n}" for t, p, n in most_frequent_confusions(counts, k)]


def analyse(run: Run, data, args: argparse.Namespace, reference_wrong: torch.Tensor | None) -> dict:
    classes = run.num_classes
    test_probs = run.predict(data.test_images)
    test_pred = test_probs.argmax(1)
    test_wrong = test_pred != data.test_labels
    labelled = torch.tensor(json.loads((run.folder / "labelled_indices.json").read_text()), dtype=torch.long)
    pool = torch.ones(len(data.train_labels), dtype=torch.bool)
    pool[labelled] = False
    train_pred = run.predict(data.train_images).argmax(1)
    pool_wrong = (train_pred != data.train_labels) & pool
    report = {"run": str(run.folder), "test_errors": int(test_wrong.sum()),
              "test_confusions": confusions(data.test_labels[test_wrong], test_pred[test_wrong], classes),
              "pool_images": int(pool.sum()), "pool_errors": int(pool_wrong.sum()),
              "pool_confusions": confusions(data.train_labels[pool_wrong], train_pred[pool_wrong], classes)}
    if reference_wrong is not None:
        own = test_wrong & ~reference_wrong
        report["test_errors_shared_with_reference"] = int((test_wrong & reference_wrong).sum())
        report["own_test_confusions"] = confusions(data.test_labels[own], test_pred[own], classes, 8)
    if args.passes > 1:
        averaged = run.predict(data.test_images, passes=args.passes).argmax(1)
        report[f"test_errors_{args.passes}_passes"] = int((averaged != data.test_labels).sum())
    if args.feature_graph:
        features, _ = learnt_features(run.model, data.train_images)
        graph = propagate_labels(features[:, :, None, None], labelled, data.train_labels[labelled], classes)
        graph_wrong = (graph.labels != data.train_labels) & pool
        fixed, broken = pool_wrong & ~graph_wrong, ~pool_wrong & graph_wrong
        report["feature_graph"] = {
            "pool_errors": int(graph_wrong.sum()), "fixes": int(fixed.sum()), "breaks": int(broken.sum()),
            "fixed": confusions(data.train_labels[fixed], train_pred[fixed], classes, 4),
            "broken": confusions(data.train_labels[broken], graph.labels[broken], classes, 4)}
    report["_test_probs"] = test_probs
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN")
    parser.add_argument("--reference", help="a run trained on every label: its test errors count as hard ones")
    parser.add_argument("--passes", type=int, default=1, help="also the test errors averaging this many passes")
    parser.add_argument("--feature-graph", action="store_true", help="label propagation over the learnt features")
    parser.add_argument("--ensemble", action="store_true", help="also the runs' averaged probabilities")
    parser.add_argument("--data-dir", help="data folder (default: the one each run used)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)  # the stochastic passes of --passes
    runs = [load_run(path) for path in args.runs]
    cfg = runs[0].config
    data = load_dataset(cfg.dataset, args.data_dir or cfg.data_dir)
    if bool((data.train_labels < 0).any()):
        raise SystemExit(f"{cfg.dataset} has training images without labels: the pool's errors cannot be counted")
    reference_wrong = None
    if args.reference:
        reference_wrong = load_run(args.reference).predict(data.test_images).argmax(1) != data.test_labels
    reports = [analyse(run, data, args, reference_wrong) for run in runs]
    probs = [report.pop("_test_probs") for report in reports]
    for report in reports:
        print(json.dumps(report))
    if args.ensemble:
        wrong = [p.argmax(1) != data.test_labels for p in probs]
        print(json.dumps({"ensemble": args.runs, "test_errors": int((sum(probs).argmax(1) != data.test_labels).sum()),
                          "shared_test_errors": int(np.logical_and.reduce([w.numpy() for w in wrong]).sum())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
