"""The peer FixMatch adapter's own pieces (benchmarks/peer_fixmatch.py), without the peer's
environment: its network copy and its stand-ins for the modules the peer never calls."""
from __future__ import annotations

import subprocess
import sys

import torch

from benchmark_scripts import BENCHMARKS, load_benchmark
from stochreg.nets import build_net


def test_the_peer_trains_the_architecture_of_stochregs_compact_net():
    peer = load_benchmark("peer_fixmatch").compact_architecture(1, 10)
    ours = build_net("compact", (1, 28, 28), 10)
    assert [p.shape for p in peer.parameters()] == [p.shape for p in ours.parameters()]
    out = peer(torch.zeros(4, 1, 28, 28))
    assert out["logits"].shape == (4, 10) and out["feat"].shape == (4, 128)
    assert peer(out["feat"], only_fc=True).shape == (4, 10)


def test_stand_ins_import_any_submodule_of_an_unused_package_and_nothing_else():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import peer_fixmatch as p; p.stand_in_unused_imports(); "
            "from timm.models.layers import DropPath; import torchaudio.transforms; from transformers import BertModel; "
            "BertModel(); import json\n"
            "try:\n    import not_a_package_anywhere\nexcept ModuleNotFoundError:\n    print('ok')")
    done = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
