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


END_TO_END = "end_to_end"


def pytest_configure(config):
    config.addinivalue_line("markers", f"{END_TO_END}: the test trains a model (a real run, however short); "
                                       "`make test-fast` leaves these out")


@pytest.fixture(autouse=True)
def training_only_where_marked(request, monkeypatch):
    """A test that trains a model in this process must be marked end_to_end, so that `make test-fast` (the
    unit tests: ``-m "not end_to_end"``) never trains. Tests that train in a subprocess, or in a fixture
    shared by a module, are marked by hand. STOCHREG_RECORD_TRAINING=FILE lists the unmarked tests that
    train instead of failing them."""
    if request.node.get_closest_marker(END_TO_END) is not None:
        return
    import os
    import stochreg.train.loop as loop
    original = loop._open_run

    def guarded(*args, **kwargs):
        record = os.environ.get("STOCHREG_RECORD_TRAINING")
        if not record:
            pytest.fail(f"{request.node.nodeid} trains a model: mark it end_to_end (@pytest.mark.end_to_end, "
                        "or pytestmark for the whole module)")
        with open(record, "a") as f:
            f.write(request.node.nodeid + "\n")
        return original(*args, **kwargs)
    monkeypatch.setattr(loop, "_open_run", guarded)
