"""The EMA of the weights: warm-up of the decay, averaging, buffers copied."""
from __future__ import annotations

import pytest
import torch

from stochreg.train.ema import EMA


def test_decay_warms_up_then_stays():
    ema = EMA(torch.nn.Linear(1, 1), decay=0.99)
    decays = []
    for _ in range(1000):
        decays.append(ema.current_decay())
        ema.updates += 1
    assert decays[0] == pytest.approx(0.1) and decays[-1] == 0.99
    assert all(a <= b for a, b in zip(decays, decays[1:]))


def test_update_is_an_exponential_average():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = EMA(model, decay=0.5)
    ema.updates = 100  # past the warm-up
    with torch.no_grad():
        ema.module.weight.fill_(0.0)
        model.weight.fill_(1.0)
    ema.update(model)
    assert ema.module.weight.item() == pytest.approx(0.5)
    assert not ema.module.weight.requires_grad


def test_buffers_are_copied():
    model = torch.nn.BatchNorm1d(3)
    ema = EMA(model, decay=0.9)
    model.train()
    model(torch.randn(8, 3) + 5)
    ema.update(model)
    assert torch.equal(ema.module.running_mean, model.running_mean)
