"""The end of a run: the final model's test (and validation) error by the rule fixed in the
config, the final checkpoint, results.json, the human report and the closing log line."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from ..runtime.checkpoints import save_checkpoint
from ..config import TrainConfig
from ..data import Dataset
from ..evaluate import predict_probs, test_error
from ..runtime.machine import machine_description
from ..nets import count_parameters
from ..runs.report import write_run_report
from ..pretrained import weights_source
from ..runs.verdict import class_scores, nothing_learnt, stopped_early
from .state import Learner


# The test set's largest class this many times its share in a balanced set: its balanced error is shown too.
UNBALANCED_SHARE = 1.3


def final_errors(learner: Learner, cfg: TrainConfig, data: Dataset, scored: dict, device: torch.device) \
        -> tuple[torch.Tensor, float | None, float | None, dict[str, float]]:
    """(test predictions, single-pass test error, the result's test error, the final record's errors)."""
    def predict(passes: int) -> tuple[torch.Tensor, float]:
        predicted = predict_probs(learner.eval_model, data.test_images, cfg.eval_batch, passes, device=device).argmax(1)
        return predicted, (predicted != data.test_labels).float().mean().item()

    predictions, single_pass_error, final_error = torch.zeros(0, dtype=torch.long), None, None
    if "test" in scored:
        predictions, single_pass_error = predict(1)
        final_error = single_pass_error
        if cfg.tta_passes > 1:  # the result is the k-pass average: a rule fixed in the config
            predictions, final_error = predict(cfg.tta_passes)
    final = {"test_error": final_error} if final_error is not None else {}
    if "val" in scored:  # the same rule (passes) as the test error
        final["val_error"] = test_error(learner.eval_model, *scored["val"], cfg.eval_batch, cfg.tta_passes, device)
    return predictions, single_pass_error, final_error, final


def write_results(out_dir: Path, learner: Learner, cfg: TrainConfig, data: Dataset, labelled: torch.Tensor,
                  predictions: torch.Tensor, single_pass_error: float | None, final: dict[str, float],
                  timing: dict[str, float], run: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """The final checkpoint, results.json and the report; returns the results."""
    model, ema, final_error = learner.model, learner.ema, final.get("test_error")
    save_checkpoint(out_dir / "checkpoint.pt", {
        "model": model.state_dict(), "ema": ema.state_dict() if ema is not None else None,
        "step": cfg.iters, "config": cfg.to_dict(), "image_shape": list(data.image_shape),
        "num_classes": data.num_classes, "class_names": data.class_names})
    seeds = cfg.seeds()
    budget = run["time_budget"]
    warnings = stopped_early(cfg.iters, cfg.rampup_iters, learner.method.uses_unlabelled)
    scores = {}
    if final_error is not None:
        test_labels, predicted = data.test_labels.numpy(), predictions.numpy()
        started_trained = weights_source(cfg.net, cfg.weights) != "none"
        warnings = nothing_learnt(test_labels, predicted, data.label_names, "test", started_trained) + warnings
        per_class = class_scores(test_labels, predicted, data.num_classes)
        scores = {"balanced_test_error": per_class["balanced_error"],
                  "constant_test_error": per_class["constant_error"],
                  "test_recall": dict(zip(data.label_names, per_class["recall"]))}
    results = {
        "test_error": final_error,
        "test_errors": round(final_error * len(data.test_labels)) if final_error is not None else None,
        **scores, "tta_passes": cfg.tta_passes, "test_error_single_pass": single_pass_error,
        "evaluated": "ema" if ema is not None else "final", "train_seconds": round(timing["train"], 1),
        "eval_seconds": round(timing["eval"], 1),
        **({"val_error": final["val_error"], "val_size": cfg.val_size} if "val_error" in final else {}),
        **({"time_budget": budget} if budget > 0 else {}),
        **({"recipe": learner.recipe} if learner.recipe else {}),
        **({"notes": [note.removeprefix("note: ") for note in run["notes"]]} if run["notes"] else {}),
        **({"warnings": [w.removeprefix("warning: ") for w in warnings]} if warnings else {}), **run.get("prior", {}),
        **learner.term_results(),
        "iters": cfg.iters, "dataset": cfg.dataset, "labels": len(labelled), "method": cfg.method,
        "net": cfg.net, "parameters": count_parameters(model), "seed": cfg.seed, "seeds": seeds,
        "resumed_at": run["resumed_at"], "world_size": learner.dist.world_size,
        # `python -m stochreg`, torchrun and the console script are one program: name it as a user types it
        "command": shlex.join(["stochreg", *sys.argv[1:]]), "commit": run["commit"],
        "machine": machine_description(learner.device, learner.dist.world_size), "torch": torch.__version__,
    }
    write_run_report(out_dir, cfg, results, data.test_labels.numpy(), predictions.numpy(), data.label_names,
                     {"train": len(data.train_labels), "test": len(data.test_labels),
                      "shape": "x".join(map(str, data.image_shape))}, learner.terms)
    # Written last: a run is finished when its results.json is there, so that a finish interrupted before
    # (Ctrl-C during the final evaluation or the plots) is completed by --resume.
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if "val_error" in results:
        log(f"validation error {100 * results['val_error']:.2f}% on {cfg.val_size} labelled training images "
            "kept out of the labelled split")
    minutes = timing["train"] / 60
    if final_error is None:
        log(f"trained {cfg.iters} steps in {minutes:.1f} min; no test estimate (the data has no test "
            f"images: add a test/CLASS/... folder, or --holdout K); results in {out_dir / 'results.json'}")
    else:
        # where the classes are unbalanced the plain error flatters a model that favours the common ones
        unbalanced = 1 - scores["constant_test_error"] >= UNBALANCED_SHARE / data.num_classes
        balanced = f", balanced error {100 * scores['balanced_test_error']:.2f}%" if unbalanced else ""
        log(f"final test error {100 * final_error:.2f}% ({results['test_errors']} of {len(data.test_labels)})"
            f"{balanced} after {cfg.iters} steps in {minutes:.1f} min; results in {out_dir / 'results.json'}")
    for warning in warnings:
        log(warning)
    return results
