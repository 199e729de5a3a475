"""Shared fixtures."""
from __future__ import annotations

import pytest
import torch

from tinydata import write_idx_dataset

torch.set_num_threads(2)


@pytest.fixture
def tiny_data_dir(tmp_path):
    """A data folder whose ``mnist`` subfolder holds 200 train and 100 test synthetic digits."""
    write_idx_dataset(tmp_path / "data" / "mnist")
    return tmp_path / "data"
