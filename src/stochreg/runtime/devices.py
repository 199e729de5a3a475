"""The device a run trains on (``pick_device``), and moving the small per-step tensors drawn on the host (batch indices, transformation
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

from ..errors import UsageError


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def pick_device(name: str, local_rank: int | None = None) -> torch.device:
    """The device ``name`` asks for; under torchrun, ``auto`` and ``cuda`` mean this process's GPU
    (``cuda:LOCAL_RANK``), which also becomes the current device so no process touches GPU 0
    by accident."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name} asked for, but no CUDA GPU is available")
    if device.type == "cuda" and device.index is None and local_rank is not None:
        if local_rank >= torch.cuda.device_count():
            raise UsageError(f"process with LOCAL_RANK {local_rank} has no GPU: this machine has "
                             f"{torch.cuda.device_count()}; use --nproc_per_node at most that", every_rank=False)
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and device.index is None:
        # plain "cuda" is the current GPU; name it, since set_device rejects a device without an index
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device
