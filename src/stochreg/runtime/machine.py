"""What a result was measured with: the source commit and the machine (CPU model and kernel
features, or GPU name)."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch


def source_commit() -> str | None:
    """The git commit of the stochreg source, with "+dirty" when its files have uncommitted changes."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=here, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], capture_output=True, text=True,
                               cwd=here, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), so that wall times measured on two
    machines of the same core count are not read as one machine's."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return None


# The CPU features torch's kernels choose between: two machines with one model name (an "AMD EPYC" of the
# Zen 3 kind has AVX2 only, one of the Zen 4 kind AVX-512 with native bfloat16) differ by about 2x a step.
KERNEL_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """Which of KERNEL_FEATURES the CPU lists in /proc/cpuinfo (Linux; empty elsewhere), in that order."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return []
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    return [name for name in KERNEL_FEATURES if name in flags]


def cpu_computes_bf16() -> bool:
    """Does this CPU compute bfloat16 natively (AVX-512 BF16 or AMX), rather than emulate it?"""
    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_features()))


def machine_description(device: torch.device, world_size: int = 1) -> str:
    if device.type == "cuda":
        what = f"{torch.cuda.get_device_name(device)}"
    else:
        named = "; ".join(part for part in (cpu_model_name(), " ".join(cpu_features())) if part)
        what = (f"{platform.machine()} CPU{f' ({named})' if named else ''}, {os.cpu_count()} cores, "
                f"{torch.get_num_threads()} torch threads")
    return what + (f"; {world_size} processes (torchrun)" if world_size > 1 else "")
