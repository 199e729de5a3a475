"""ELPV: 2,624 electroluminescence images of solar cells (300x300 grayscale PNG), functional or defective.

The data set of Buerhop-Lutz et al. and Deitsch et al. (2018): ``labels.csv`` lines
``images/cellNNNN.png  PROBABILITY  TYPE``, the probability that the cell is defective (0, 1/3, 2/3 or 1,
from an expert) and the cell type (mono, poly). The binary task read here: functional (probability
< 0.5, 1,803 cells) against defective (>= 0.5, 821). The data set has no split of its own: a fixed,
stratified quarter of each class (seeded, the same on every machine) is the test set, so that the
labelled splits of ``--seed`` vary while the test set does not.

Images are read as the user's own images are (data/folders.py): at their size, unless that exceeds
``DEFAULT_MAX_SIDE``, where they are read smaller (aspect kept). ``stochreg data fetch elpv`` takes the
files from the data set's own repository, or offline from the PyPI wheel ``elpv-dataset`` that ships
them (only its data files are used, never its code).
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .listing import DEFAULT_MAX_SIDE
from .images import read_images
from .offline import pip_download

CLASS_NAMES = ["functional", "defective"]
DEFECTIVE_FROM = 0.5          # probabilities of 2/3 and 1 are defective, 0 and 1/3 functional
TEST_FRACTION = 0.25
TEST_SPLIT_SEED = 2624        # fixed: the test set is the same for every labelled split
ELPV_WHEEL = "elpv-dataset==1.0.0.post1"
_WHEEL_DATA = "elpv_dataset/data/"


def read_labels(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """(image files, defect probabilities, cell types) from ``folder/labels.csv``."""
    path = folder / "labels.csv"
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}; run: stochreg data fetch elpv") from None
    files, probabilities, types = [], [], []
    for number, fields in enumerate(lines, start=1):
        if len(fields) != 3:
            raise DataError(f"{path}, line {number}: expected 'image probability type', got {len(fields)} fields")
        try:
            probability = float(fields[1])
        except ValueError:
            raise DataError(f"{path}, line {number}: defect probability {fields[1]!r} is not a number") from None
        files.append(folder / fields[0])
        probabilities.append(probability)
        types.append(fields[2])
    return files, np.array(probabilities), types


def binary_labels(probabilities: np.ndarray) -> np.ndarray:
    """0 (functional) or 1 (defective) from the defect probabilities.

    >>> binary_labels(np.array([0.0, 1 / 3, 2 / 3, 1.0])).tolist()
    [0, 0, 1, 1]
    """
    return (probabilities >= DEFECTIVE_FROM).astype(np.int64)


def held_out_indices(labels: np.ndarray, fraction: float = TEST_FRACTION, seed: int = TEST_SPLIT_SEED) -> np.ndarray:
    """A stratified ``fraction`` of each class (sorted indices), the same for the same labels.

    >>> held_out_indices(np.array([0] * 8 + [1] * 4)).tolist()
    [0, 1, 8]
    """
    generator = np.random.default_rng(seed)
    chosen = [generator.permutation(np.flatnonzero(labels == c))[:round(fraction * np.sum(labels == c))]
              for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def read_elpv(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images N x 1 x H x W uint8, labels), "test": ...}; images longer than
    DEFAULT_MAX_SIDE read smaller, as the own-images path reads them."""
    files, probabilities, _ = read_labels(folder)
    labels = binary_labels(probabilities)
    from PIL import Image
    try:
        with Image.open(files[0]) as first:
            width, height = first.size
    except (OSError, IndexError):
        raise DataError(f"cannot read the ELPV images in {folder / 'images'}; run: stochreg data fetch elpv") from None
    scale = min(1.0, DEFAULT_MAX_SIDE / max(width, height))
    images, _ = read_images(files, (1, round(height * scale), round(width * scale)))
    test = np.zeros(len(labels), dtype=bool)
    test[held_out_indices(labels)] = True
    images = images.numpy()
    return {"train": (images[~test], labels[~test]), "test": (images[test], labels[test])}


def unpack_repository_archive(archive: Path, folder: Path) -> None:
    """The data set's repository archive (``.../data/labels.csv`` and ``.../data/images/``) unpacked so that
    ``folder`` holds ``labels.csv`` and ``images/``; the archive is removed."""
    import tarfile
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"corrupt archive {archive}: {exc}") from None
        found = next(Path(tmp).glob("*/data/labels.csv"), None)
        if found is None:
            raise DataError(f"{archive} holds no data/labels.csv: not the ELPV repository")
        _move_data(found.parent, folder)
    archive.unlink()


def _move_data(source: Path, folder: Path) -> None:
    """``source/images`` and ``source/labels.csv`` moved into ``folder``, labels last (its presence
    marks a complete data set)."""
    shutil.rmtree(folder / "images", ignore_errors=True)
    shutil.move(str(source / "images"), str(folder / "images"))
    shutil.move(str(source / "labels.csv"), str(folder / "labels.csv"))


def elpv_offline(folder: Path) -> None:
    """ELPV's files from the PyPI wheel that ships them (pip download; only the data files are used)."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        wheel = pip_download(ELPV_WHEEL, Path(tmp))
        with zipfile.ZipFile(wheel) as wz:
            members = [m for m in wz.namelist() if m.startswith(_WHEEL_DATA)]
            wz.extractall(tmp, members)
        source = Path(tmp, _WHEEL_DATA)
        files, _, _ = read_labels(source)
        missing = [f.name for f in files if not f.is_file()]
        if missing or not files:
            raise DataError(f"{ELPV_WHEEL} lacks {len(missing)} of the images its labels.csv lists "
                            f"(e.g. {missing[0] if missing else 'all'})")
        _move_data(source, folder)

