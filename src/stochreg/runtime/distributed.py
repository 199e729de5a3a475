"""Multi-process training under ``torchrun``: which process this is, and the few collectives
training needs (loss averaging for the log, agreement on stopping, gathering RNG states).

``torchrun --nproc_per_node N -m stochreg train ...`` starts N processes and sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init_distributed` joins them into a
process group (nccl on GPUs, gloo on CPUs). Without torchrun, :data:`SINGLE` stands for the one
process and every collective is the identity, so the training code has a single path.

What is global and what is per rank (docs/distributed.md):

- the configured batch sizes are global; rank r takes rows [r*B/W, (r+1)*B/W) of every batch;
- every rank draws the same global batch indices and the same transformation parameters for
  the whole global batch, and applies the rows of its own shard, so the images and their views
  do not depend on the world size; the n views of an image are always on the same rank;
- dropout and fractional max-pooling draw from a per-rank stream seeded from the run's seed
  and the rank (rank 0's is the single-process stream);
- gradients are averaged by DistributedDataParallel; the losses are means over equal shards,
  so the average is the global-batch gradient;
- rank 0 alone evaluates and writes logs, checkpoints and results.
"""
from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import UsageError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job; ``world_size == 1`` and ``active == False`` without torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False  # a process group exists (torchrun, even with a single process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: int) -> slice:
        """This rank's rows of a global batch of ``batch`` rows."""
        per_rank = batch // self.world_size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def _all_reduce(self, value: torch.Tensor, op) -> torch.Tensor:
        if not self.active:
            return value
        value = value.clone()
        dist.all_reduce(value, op=op)
        return value

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average of ``values`` over the ranks (for logging the global loss)."""
        return self._all_reduce(values, dist.ReduceOp.SUM) / self.world_size

    def min(self, value: torch.Tensor) -> torch.Tensor:
        return self._all_reduce(value, dist.ReduceOp.MIN)

    def max(self, value: torch.Tensor) -> torch.Tensor:
        return self._all_reduce(value, dist.ReduceOp.MAX)

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is true on any rank (to stop together)."""
        return bool(self.max(torch.tensor([int(flag)], device=device)).item())

    def all_gather(self, value: torch.Tensor) -> torch.Tensor:
        """Every rank's ``value`` (the same shape on each), concatenated in rank order, on every rank:
        a per-rank shard of a global batch becomes the global batch."""
        if not self.active:
            return value
        parts = [torch.empty_like(value) for _ in range(self.world_size)]
        dist.all_gather(parts, value.contiguous())
        return torch.cat(parts)

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0 (None elsewhere)."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


SINGLE = Distributed()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def environment_rank() -> int:
    """The rank torchrun gave this process (0 without torchrun), readable before any setup."""
    return int(os.environ.get("RANK", "0") or 0) if launched_by_torchrun() else 0


def init_distributed(device: torch.device, timeout_minutes: float = 30) -> Distributed:
    """Joins torchrun's process group (nccl for CUDA devices, gloo otherwise); SINGLE without torchrun.

    The timeout bounds how long a rank waits in a collective for a rank that hangs; a rank that
    dies is noticed by torchrun, which stops the others at once.
    """
    if not launched_by_torchrun():
        return SINGLE
    try:
        rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise UsageError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (they are set by torchrun)") from None
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        timeout = datetime.timedelta(minutes=timeout_minutes)
        dist.init_process_group(backend, store=_job_store(rank, world, timeout), rank=rank, world_size=world,
                                timeout=timeout, **kwargs)
    return Distributed(rank=rank, world_size=world, local_rank=local, active=True)


def _job_store(rank: int, world: int, timeout: datetime.timedelta) -> dist.Store:
    """The key-value store the processes meet in, with a namespace of its own for every start.

    torchrun's agent keeps one store for the whole job and, when it restarts failed workers
    (``--max-restarts``), the new processes meet in it again. Under the plain ``env://`` names
    they could read the addresses the dead processes left there and wait for them until the
    timeout; the restart count in the prefix keeps every round's keys apart.
    """
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    try:
        host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    except (KeyError, ValueError):
        raise UsageError("MASTER_ADDR and MASTER_PORT must name the rendezvous (torchrun sets them)") from None
    store = dist.TCPStore(host, port, world, is_master=rank == 0 and not agent_hosts_it, timeout=timeout,
                          wait_for_workers=False)
    return dist.PrefixStore(f"stochreg/start-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def close_distributed(ctx: Distributed) -> None:
    """Destroys the process group while the interpreter is fully alive.

    Objects that hold the group (DistributedDataParallel's reducer, finished gloo work) and sit
    in reference cycles are collected first: left to interpreter shutdown, freeing them can need
    the GIL from a gloo thread when it is no longer there, which aborts a rank (SIGABRT) after
    training has finished (the mechanism pytorch/pytorch#179291 describes).
    """
    if ctx.active and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
