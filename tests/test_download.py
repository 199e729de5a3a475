"""Downloads against a local HTTP server on 127.0.0.1: every format fetched and read back,
checksum match and mismatch, transfers that break off resumed with range requests, and the
message when no mirror answers."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import re
import tarfile
import threading

import pytest

from stochreg.cli import main
from stochreg.data import fetch as fetching
from stochreg.data import load_dataset
from stochreg.errors import DataError
from test_readers import write_norb, write_svhn
from tinydata import write_cifar


class Mirror:
    """Serves ``files`` (name -> bytes). Names in ``cut`` break off halfway through their first
    response; ``honour_ranges=False`` makes it answer a range request with the whole file."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.honour_ranges = True
        self.requests: list[tuple[str, str | None]] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                mirror.requests.append((name, self.headers.get("Range")))
                if name not in mirror.files:
                    self.send_error(404)
                    return
                body = mirror.files[name]
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and mirror.honour_ranges:
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in mirror.cut:
                    mirror.cut.discard(name)
                    self.wfile.write(body[start:len(body) // 2])  # then the connection closes
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve_folder(self, folder, names):
        for name in names:
            self.files[name] = (folder / name).read_bytes()


@pytest.fixture
def mirror():
    server = Mirror()
    yield server
    server.server.shutdown()


def use_mirror(monkeypatch, name, mirror, md5=None):
    """Points dataset ``name`` at the local mirror; ``md5`` replaces the published checksums
    (the served files are tiny stand-ins for the real ones)."""
    source = fetching.SOURCES[name]
    md5 = md5 if md5 is not None else {k: hashlib.md5(mirror.files[k]).hexdigest() for k in source.md5}
    monkeypatch.setitem(fetching.SOURCES, name, dataclasses.replace(source, mirrors=(mirror.url,), md5=md5))


def tar_gz(folder, member) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder / member, arcname=member)
    return buffer.getvalue()


def quiet(message):
    pass


def test_svhn_is_downloaded_verified_and_readable(tmp_path, mirror, monkeypatch):
    write_svhn(tmp_path / "served", {"train": 40, "test": 20})
    mirror.serve_folder(tmp_path / "served", ["train_32x32.mat", "test_32x32.mat"])
    use_mirror(monkeypatch, "svhn", mirror)
    fetching.fetch("svhn", tmp_path / "data", log=quiet)
    data = load_dataset("svhn", tmp_path / "data", fetch_missing=False)
    assert data.image_shape == (3, 32, 32) and len(data.train_labels) == 40


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_archive_is_downloaded_extracted_and_removed(tmp_path, mirror, monkeypatch, name):
    write_cifar(tmp_path / "served", name, n_train=120, n_test=40)
    archive = fetching.SOURCES[name].md5.copy().popitem()[0]
    inner = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[name]
    mirror.files[archive] = tar_gz(tmp_path / "served", inner)
    use_mirror(monkeypatch, name, mirror)
    folder = fetching.fetch(name, tmp_path / "data", log=quiet)
    assert (folder / inner).is_dir() and not (folder / archive).exists()
    assert len(load_dataset(name, tmp_path / "data").train_labels) == 120


@pytest.mark.end_to_end
def test_norb_from_the_command_line_with_a_mirror_then_training(tmp_path, mirror, capsys):
    """NORB has no published checksums, so the real source works with --mirror unchanged."""
    import gzip
    write_norb(tmp_path / "served")
    for name in fetching.SOURCES["norb"].md5:
        mirror.files[name] = gzip.compress((tmp_path / "served" / name.removesuffix(".gz")).read_bytes())
    assert main(["data", "fetch", "norb", "--data-dir", str(tmp_path / "data"), "--mirror", mirror.url]) == 0
    assert "norb: ready" in capsys.readouterr().out
    assert main(["train", "--dataset", "norb", "--data-dir", str(tmp_path / "data"), "--labels", "10",
                 "--iters", "2", "--batch-labelled", "10", "--batch-unlabelled", "5", "--eval-batch", "15",
                 "--transform", "crop", "--no-progress", "--out", str(tmp_path / "run")]) == 0


def test_a_transfer_that_breaks_off_resumes_with_a_range_request(tmp_path, mirror, monkeypatch):
    write_svhn(tmp_path / "served", {"train": 40, "test": 20})
    mirror.serve_folder(tmp_path / "served", ["train_32x32.mat", "test_32x32.mat"])
    mirror.cut.add("train_32x32.mat")
    use_mirror(monkeypatch, "svhn", mirror)
    messages = []
    folder = fetching.fetch("svhn", tmp_path / "data", log=messages.append)
    size = len(mirror.files["train_32x32.mat"])
    train_requests = [r for r in mirror.requests if r[0] == "train_32x32.mat"]
    assert train_requests == [("train_32x32.mat", None), ("train_32x32.mat", f"bytes={size // 2}-")]
    assert (folder / "train_32x32.mat").read_bytes() == mirror.files["train_32x32.mat"]
    assert any("broke off" in m and "resuming" in m for m in messages)


def test_a_part_file_left_by_an_interrupted_fetch_is_continued(tmp_path, mirror, monkeypatch):
    write_svhn(tmp_path / "served", {"train": 40, "test": 20})
    mirror.serve_folder(tmp_path / "served", ["train_32x32.mat", "test_32x32.mat"])
    use_mirror(monkeypatch, "svhn", mirror)
    folder = tmp_path / "data" / "svhn"
    folder.mkdir(parents=True)
    (folder / "train_32x32.mat.part").write_bytes(mirror.files["train_32x32.mat"][:1000])
    fetching.fetch("svhn", tmp_path / "data", log=quiet)
    assert ("train_32x32.mat", "bytes=1000-") in mirror.requests
    assert (folder / "train_32x32.mat").read_bytes() == mirror.files["train_32x32.mat"]


def test_a_server_that_ignores_ranges_sends_the_file_again_from_the_start(tmp_path, mirror, monkeypatch):
    write_svhn(tmp_path / "served", {"train": 40, "test": 20})
    mirror.serve_folder(tmp_path / "served", ["train_32x32.mat", "test_32x32.mat"])
    mirror.cut.add("train_32x32.mat")
    mirror.honour_ranges = False
    use_mirror(monkeypatch, "svhn", mirror)
    folder = fetching.fetch("svhn", tmp_path / "data", log=quiet)
    assert (folder / "train_32x32.mat").read_bytes() == mirror.files["train_32x32.mat"]


def test_a_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, mirror, monkeypatch):
    write_svhn(tmp_path / "served", {"train": 40, "test": 20})
    mirror.serve_folder(tmp_path / "served", ["train_32x32.mat", "test_32x32.mat"])
    use_mirror(monkeypatch, "svhn", mirror, md5={"train_32x32.mat": "0" * 32, "test_32x32.mat": None})
    with pytest.raises(DataError, match="checksum mismatch for .*train_32x32.mat: md5 [0-9a-f]{32}, expected 0{32}"):
        fetching.fetch("svhn", tmp_path / "data", log=quiet)
    assert not list((tmp_path / "data" / "svhn").iterdir())


def test_no_mirror_reachable_says_which_files_to_copy_where(tmp_path, monkeypatch, capsys):
    source = dataclasses.replace(fetching.SOURCES["svhn"], mirrors=("http://127.0.0.1:9/",))
    monkeypatch.setitem(fetching.SOURCES, "svhn", source)
    assert main(["data", "fetch", "svhn", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stochreg: error: cannot download svhn: http://127.0.0.1:9/")
    assert f"copy train_32x32.mat, test_32x32.mat (from http://ufldl.stanford.edu/housenumbers/) into " \
           f"{tmp_path / 'svhn'}" in err[0]


def test_training_on_an_empty_folder_fetches_first(tmp_path, mirror, monkeypatch, capsys):
    write_svhn(tmp_path / "served", {"train": 40, "test": 20})
    mirror.serve_folder(tmp_path / "served", ["train_32x32.mat", "test_32x32.mat"])
    use_mirror(monkeypatch, "svhn", mirror)
    assert len(load_dataset("svhn", tmp_path / "data", log=quiet).test_labels) == 20
