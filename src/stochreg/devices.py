"""Moving the small per-step tensors drawn on the host (batch indices, transformation
parameters) to the device without making the host wait for the GPU.

A plain ``.to("cuda")`` from ordinary (pageable) host memory blocks the host until the copy is
done, and the copy waits for the kernels queued before it: a synchronisation every step. From
pinned memory with ``non_blocking=True`` the copy is queued like a kernel and the host runs on.
On the CPU this is the identity.

    >>> to_device(torch.arange(3), torch.device("cpu")).tolist()
    [0, 1, 2]
"""
from __future__ import annotations

import torch


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
