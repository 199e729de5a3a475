"""Shared fixtures."""
from __future__ import annotations

import pytest
import torch

from tinydata import write_idx_dataset

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def no_real_mirrors(monkeypatch):
    """The tests never download real datasets: every canonical mirror points at a closed local
    port (a test that serves files replaces the mirrors with its own server)."""
    import dataclasses
    from stochreg.data import fetch as fetching
    for name, source in list(fetching.SOURCES.items()):
        monkeypatch.setitem(fetching.SOURCES, name, dataclasses.replace(source, mirrors=("http://127.0.0.1:9/",)))


@pytest.fixture
def tiny_data_dir(tmp_path):
    """A data folder whose ``mnist`` subfolder holds 200 train and 100 test synthetic digits."""
    write_idx_dataset(tmp_path / "data" / "mnist")
    return tmp_path / "data"
