"""Checkpoints load without executing code; damaged ones are clear errors."""
from __future__ import annotations


import pytest
import torch

from stochreg.runtime.checkpoints import load_checkpoint, save_checkpoint
from stochreg.errors import DataError


class Payload:
    """Unpickling this would run code: it must never happen."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(6.0).view(2, 3)}, "step": 7, "config": {"lr": 0.1, "net": "compact"}}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["step"] == 7
    assert loaded["config"] == state["config"] and not (tmp_path / "c.pt.tmp").exists()


def test_code_in_a_checkpoint_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="refusing checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"w": torch.zeros(1000)})
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="corrupt checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(DataError, match="missing checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
