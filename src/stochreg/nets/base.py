"""The registry of networks by name, which each family's module registers into."""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..registry import Registry

NETS: Registry[Callable[[tuple[int, int, int], int], nn.Module]] = Registry("network")
