"""IDX files, dataset loading, labelled splits, and fetching (against a local HTTP server)."""
from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest
import torch

from tinydata import write_idx_dataset
from stochreg.data import labelled_split, load_dataset
from stochreg.data import fetch as fetching
from stochreg.data.idx import read_idx, write_idx
from stochreg.errors import DataError, UsageError


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_idx_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape).astype(np.uint8)
    write_idx(tmp_path / f"a{suffix}", array)
    assert np.array_equal(read_idx(tmp_path / f"a{suffix}"), array)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_reads_every_standard_type(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / "x.gz", array)
    loaded = read_idx(tmp_path / "x.gz")
    assert loaded.dtype.newbyteorder("=") == np.dtype(dtype) and np.array_equal(loaded, array)


def test_idx_header_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "labels", np.array([5, 0, 4], dtype=np.uint8))
    assert (tmp_path / "labels").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 0, 4])


@pytest.mark.parametrize("corrupt, message", [
    (lambda b: b"\x01\x02" + b[2:], "wrong magic number"),
    (lambda b: b[:-10], "truncated or padded"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b[:2] + b"\x0a" + b[3:], "unknown IDX type code 0x0a"),
])
def test_corrupt_idx_is_a_clear_error(tmp_path, corrupt, message):
    write_idx(tmp_path / "a", np.zeros((4, 5, 5), dtype=np.uint8))
    (tmp_path / "a").write_bytes(corrupt((tmp_path / "a").read_bytes()))
    with pytest.raises(DataError, match=message):
        read_idx(tmp_path / "a")


def test_truncated_gzip_is_a_clear_error(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros((50, 28, 28), dtype=np.uint8))
    data = (tmp_path / "a.gz").read_bytes()
    (tmp_path / "a.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt data file"):
        read_idx(tmp_path / "a.gz")


@pytest.mark.parametrize("compressed", [True, False])
def test_load_dataset_reads_idx_folder(tmp_path, compressed):
    write_idx_dataset(tmp_path / "mnist", compressed=compressed)
    ds = load_dataset("mnist", tmp_path, fetch_missing=False)
    assert ds.train_images.shape == (200, 1, 28, 28) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (100, 1, 28, 28) and ds.train_labels.dtype == torch.int64
    assert ds.num_classes == 10 and ds.is_digits


def test_missing_files_name_the_fetch_command(tmp_path):
    (tmp_path / "mnist").mkdir()
    with pytest.raises(DataError, match="stochreg data fetch mnist"):
        load_dataset("mnist", tmp_path, fetch_missing=False)


def test_labels_out_of_range_are_refused(tmp_path):
    write_idx_dataset(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.full(100, 12, dtype=np.uint8))
    with pytest.raises(DataError, match="labels outside 0..9"):
        load_dataset("mnist", tmp_path, fetch_missing=False)


def test_split_is_balanced_and_reproducible():
    labels = torch.arange(1000) % 10
    a = labelled_split(labels, 100, 10, seed=3)
    assert torch.bincount(labels[a]).tolist() == [10] * 10
    assert torch.equal(a, labelled_split(labels, 100, 10, seed=3))
    assert not torch.equal(a, labelled_split(labels, 100, 10, seed=4))
    assert len(set(a.tolist())) == 100


def test_a_count_that_is_not_a_multiple_of_the_classes_is_as_balanced_as_it_can_be():
    labels = torch.arange(1000) % 10
    idx = labelled_split(labels, 732 // 10 + 5, 10, seed=3)
    counts = torch.bincount(labels[idx], minlength=10)
    assert counts.sum() == 78 and set(counts.tolist()) == {7, 8} and (counts == 8).sum() == 8
    assert torch.equal(labelled_split(labels, 20, 10, seed=3), labelled_split(labels, 20, 10, seed=3))


@pytest.mark.parametrize("count, message", [(-5, ">= 0"), (2000, "has only"), (7, "fewer than the 10 classes")])
def test_bad_label_counts(count, message):
    with pytest.raises(UsageError, match=message):
        labelled_split(torch.arange(1000) % 10, count, 10, seed=0)


# --- fetching --------------------------------------------------------------------------------

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server on 127.0.0.1 serving a tiny dataset as the 'mnist' mirror."""
    served = tmp_path / "served"
    write_idx_dataset(served)
    md5 = {name: hashlib.md5((served / name).read_bytes()).hexdigest() for name in fetching.IDX_FILES}
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    source = fetching.Source(mirrors=(url,), md5=md5, offline=lambda folder: None, offline_name="nothing")
    monkeypatch.setitem(fetching.SOURCES, "mnist", source)
    yield source
    server.shutdown()


def test_fetch_downloads_and_verifies(mirror, tmp_path):
    folder = fetching.fetch("mnist", tmp_path / "data", log=lambda m: None)
    assert fetching.is_complete(fetching.SOURCES["mnist"], folder)
    assert load_dataset("mnist", tmp_path / "data").train_images.shape == (200, 1, 28, 28)


def test_fetch_refuses_a_checksum_mismatch(mirror, tmp_path, monkeypatch):
    bad = dict(mirror.md5, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
    monkeypatch.setitem(fetching.SOURCES, "mnist", fetching.Source(mirror.mirrors, bad, mirror.offline, "x"))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetching.fetch("mnist", tmp_path / "data", log=lambda m: None)
    assert not list((tmp_path / "data" / "mnist").glob("*.part"))


def test_fetch_falls_back_to_the_offline_source(tmp_path, monkeypatch):
    def offline(folder):
        write_idx_dataset(folder)
        offline.called = True
    offline.called = False
    content = {}
    unreachable = fetching.Source(("http://127.0.0.1:9/",), dict.fromkeys(fetching.IDX_FILES), offline,
                                  "a test source", content)
    monkeypatch.setitem(fetching.SOURCES, "mnist", unreachable)
    messages = []
    fetching.fetch("mnist", tmp_path, log=messages.append)
    assert offline.called and any("provisioning from a test source" in m for m in messages)


def test_offline_content_checksum_is_enforced(tmp_path, monkeypatch):
    source = fetching.Source((), dict.fromkeys(fetching.IDX_FILES), write_idx_dataset, "a test source",
                             {"t10k-labels-idx1-ubyte.gz": "f" * 64})
    monkeypatch.setitem(fetching.SOURCES, "mnist", source)
    with pytest.raises(DataError, match="checksum mismatch"):
        fetching.fetch("mnist", tmp_path, log=lambda m: None, offline=True)


def test_pinned_offline_checksums_cover_every_file():
    for name, source in fetching.SOURCES.items():
        if source.offline is None:
            continue
        assert set(source.content_sha256) == set(source.expected()), name


def test_fetch_unknown_dataset():
    with pytest.raises(DataError, match="cannot fetch"):
        fetching.fetch("imagenet-22k", "data")
