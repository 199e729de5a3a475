"""The numeric precision of the forward passes, for the training step and the speed benchmark alike."""
from __future__ import annotations

import torch


def forward_precision(device: torch.device, precision: str):
    """The context the forward passes run in: bfloat16 autocast for ``bf16``, nothing for ``fp32``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
