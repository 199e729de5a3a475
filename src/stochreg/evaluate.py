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


def test_error(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000,
               passes: int = 1, device: torch.device | str = "cpu") -> float:
    """Fraction of misclassified images (0.01 = 1% error)."""
    preds = predict_probs(model, images, batch, passes, device).argmax(dim=1)
    return (preds != labels.cpu()).float().mean().item()
