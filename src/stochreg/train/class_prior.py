"""The class prior of the unlabelled images, estimated at the end of a run, and the model's answers moved to it.

A labelled split is often balanced (20 images of each class) while the images the model will meet are not
(7 functional solar cells in 10). A model trained on the balanced labels answers as if both classes were
equally common, and errs on the common class's borderline images. The unlabelled pool shows the real
proportions: EM over the model's own probabilities on it (Saerens, Latinne and Decaestecker 2002) estimates
them, and adding ``log(estimated / labelled)`` to the classifier's bias moves every later answer (test error,
predict, export) to them, with no change elsewhere in the network.

    >>> probs = torch.tensor([[0.95, 0.05]] * 7 + [[0.1, 0.9]] * 3)     # 7 images of class 0, 3 of class 1
    >>> [round(p, 2) for p in estimate_prior(probs, torch.tensor([0.5, 0.5])).tolist()]
    [0.77, 0.23]
"""
from __future__ import annotations

import torch
from torch import nn

from ..evaluate import predict_probs, test_error
from ..data.streaming import image_subset

EM_ROUNDS = 100
SMALLEST_SHARE = 1e-3   # no class is estimated away entirely (its bias would be minus infinity)


def estimate_prior(probs: torch.Tensor, trained_prior: torch.Tensor, rounds: int = EM_ROUNDS) -> torch.Tensor:
    """The class proportions of the images whose ``probs`` (N, C) a model trained under ``trained_prior``
    gave, by EM: reweight each image's probabilities by the current estimate over the trained prior,
    renormalise, average; repeat."""
    estimate = trained_prior.clone()
    for _ in range(rounds):
        adjusted = probs * (estimate / trained_prior)
        estimate = (adjusted / adjusted.sum(1, keepdim=True)).mean(0).clamp_min(SMALLEST_SHARE)
        estimate = estimate / estimate.sum()
    return estimate


def classifier_bias(model: nn.Module, num_classes: int) -> torch.Tensor | None:
    """The bias of the model's last layer giving the class logits (a linear layer or a 1x1 convolution),
    None where it has none."""
    def gives_logits(module: nn.Module) -> bool:
        return (isinstance(module, nn.Linear) and module.out_features == num_classes) or \
            (isinstance(module, nn.Conv2d) and module.out_channels == num_classes and module.kernel_size == (1, 1))

    last = next((m for m in reversed(list(model.modules())) if gives_logits(m)), None)
    if last is None or last.bias is None or last.bias.numel() != num_classes:
        return None
    return last.bias


def shift_to_prior(model: nn.Module, estimated: torch.Tensor, trained_prior: torch.Tensor) -> bool:
    """Adds ``log(estimated / trained_prior)`` to the classifier's bias; False where the model has none."""
    bias = classifier_bias(model, len(estimated))
    if bias is None:
        return False
    with torch.no_grad():
        bias += (estimated.log() - trained_prior.log()).to(bias.device, bias.dtype)
    return True


def move_to_unlabelled_prior(learner, data, labelled: torch.Tensor, validation: torch.Tensor | None, scored: dict,
                             log) -> dict:
    """Estimates the class prior of the run's unlabelled pool (the training images outside the labelled
    split and the validation images) with the final model and shifts its answers (and the EMA's) to it;
    returns what results.json keeps: both priors, and the validation error before the shift."""
    cfg = learner.cfg
    pool = torch.ones(len(data.train_labels), dtype=torch.bool)
    pool[labelled] = False
    if validation is not None:
        pool[validation] = False
    if not bool(pool.any()):
        return {}
    images = data.train_images
    indices = pool.nonzero().flatten()
    pool_images = image_subset(images, indices)
    counts = torch.bincount(data.train_labels[labelled], minlength=data.num_classes).float()
    trained = (counts / counts.sum()).clamp_min(SMALLEST_SHARE)
    probs = predict_probs(learner.eval_model, pool_images, cfg.eval_batch, device=learner.device)
    estimated = estimate_prior(probs, trained)
    kept = {"class_prior": {"labelled": [round(p, 4) for p in trained.tolist()],
                            "estimated": [round(p, 4) for p in estimated.tolist()]}}
    if "val" in scored:
        kept["val_error_labelled_prior"] = test_error(learner.eval_model, *scored["val"], cfg.eval_batch,
                                                      device=learner.device)
    models = [learner.model] + ([learner.ema.module] if learner.ema is not None else [])
    if not all(shift_to_prior(model, estimated, trained) for model in models):
        return {}
    shares = ", ".join(f"{name} {100 * p:.0f}%" for name, p in zip(data.label_names, estimated.tolist()))
    log(f"class prior of the {len(indices)} unlabelled images, estimated with the final model: {shares} (the labelled "
        f"split's: {', '.join(f'{100 * p:.0f}%' for p in trained.tolist())}); the answers are moved to it")
    return kept
