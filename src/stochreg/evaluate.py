"""Test-set evaluation: the error of a model, optionally averaged over stochastic passes."""
from __future__ import annotations

import torch
from torch import nn

from .data.images import images_to_float
from .nets import set_stochastic_eval


@torch.no_grad()
def predict_probs(model: nn.Module, images: torch.Tensor, batch: int = 1000, passes: int = 1,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Softmax outputs for uint8 ``images``, in eval mode; ``passes > 1`` keeps dropout and
    fractional max-pooling random and averages the passes (the paper's test-time averaging)."""
    was_training = model.training
    model.eval()
    set_stochastic_eval(model, passes > 1)
    try:
        out = []
        for start in range(0, len(images), batch):
            x = images_to_float(images[start:start + batch].to(device))
            probs = sum(torch.softmax(model(x), dim=1) for _ in range(passes)) / passes
            out.append(probs.cpu())
        return torch.cat(out)
    finally:
        set_stochastic_eval(model, False)
        model.train(was_training)


@torch.no_grad()
def learnt_features(model: nn.Module, images: torch.Tensor, batch: int = 1000,
                    device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The input of the network's classifier, its last linear (or convolution) layer: its learnt
    representation, averaged over the positions where the classifier is a convolution, for uint8 ``images``
    in eval mode; and the softmax outputs of the same pass: ((N, D), (N, classes))."""
    classifier = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    captured: list[torch.Tensor] = []

    def keep(module, inputs, output):
        features = inputs[0]
        captured.append((features.mean(dim=(2, 3)) if features.dim() == 4 else features.flatten(1)).float().cpu())

    hook = classifier.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        probs = [torch.softmax(model(images_to_float(images[start:start + batch].to(device))), dim=1).cpu()
                 for start in range(0, len(images), batch)]
    finally:
        hook.remove()
        model.train(was_training)
    if not probs:
        width = classifier.in_features if isinstance(classifier, nn.Linear) else classifier.in_channels
        return torch.zeros(0, width), torch.zeros(0, 0)
    return torch.cat(captured), torch.cat(probs).float()


def test_error(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000,
               passes: int = 1, device: torch.device | str = "cpu") -> float:
    """Fraction of misclassified images (0.01 = 1% error)."""
    preds = predict_probs(model, images, batch, passes, device).argmax(dim=1)
    return (preds != labels.cpu()).float().mean().item()
