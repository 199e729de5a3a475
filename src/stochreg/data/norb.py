"""Reader for small NORB (5 classes of toys, 96x96 stereo pairs), in its binary matrix format.

Files (in ``data/norb/``, ``.mat`` raw or ``.mat.gz``):
``smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat}.mat`` and
``smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat}.mat``; ``dat`` holds N x 2 x 96 x 96 bytes,
``cat`` the N class labels (int32, 0..4).

The format: a little-endian int32 magic number giving the element type (0x1E3D4C55 bytes,
0x1E3D4C54 int32), an int32 number of dimensions, then max(3, ndim) int32 sizes (unused ones
are 1), then the data in C order.

How stochreg uses it: the stereo pair is kept as two channels of one image (2 x 96 x 96), so
the network sees both views and every transformation moves both alike; the full 96x96
resolution is kept (downsample with your own preprocessing if you want the cheaper 48x48).
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError

MAGIC = {0x1E3D4C55: np.dtype(np.uint8), 0x1E3D4C54: np.dtype("<i4")}
FILES = {"train": "smallnorb-5x46789x9x18x6x2x96x96-training", "test": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"


def read_norb_matrix(path: Path) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"missing data file {path}; download it from {URL}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"corrupt data file {path}: {exc}") from None
    if len(raw) < 8:
        raise DataError(f"corrupt data file {path}: truncated header")
    magic, ndim = struct.unpack("<ii", raw[:8])
    if magic not in MAGIC:
        raise DataError(f"corrupt data file {path}: not a NORB binary matrix (magic 0x{magic & 0xFFFFFFFF:08X})")
    if not 1 <= ndim <= 8 or len(raw) < 8 + 4 * max(3, ndim):
        raise DataError(f"corrupt data file {path}: truncated header")
    shape = struct.unpack(f"<{max(3, ndim)}i", raw[8:8 + 4 * max(3, ndim)])[:ndim]
    offset = 8 + 4 * max(3, ndim)
    expected = int(np.prod(shape)) * MAGIC[magic].itemsize
    if len(raw) - offset != expected:
        raise DataError(f"corrupt data file {path}: {len(raw) - offset} data bytes, the header announces "
                        f"{expected} (truncated or padded)")
    return np.frombuffer(raw, dtype=MAGIC[magic], offset=offset).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for suffix in (".mat", ".mat.gz"):
        if (folder / (stem + suffix)).exists():
            return folder / (stem + suffix)
    return folder / (stem + ".mat")


def read_norb(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for split, stem in FILES.items():
        images = read_norb_matrix(_find(Path(folder), stem + "-dat"))
        labels = read_norb_matrix(_find(Path(folder), stem + "-cat"))
        if images.ndim != 4 or images.shape[1] != 2 or labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"corrupt data file in {folder}: {split} images {images.shape} and labels "
                            f"{labels.shape}, expected N x 2 x H x W and N")
        out[split] = (images, labels)
    return out


def write_norb_matrix(path: Path, array: np.ndarray) -> None:
    """Writes ``array`` (uint8 or int32) in the NORB binary matrix format (for tests and tools)."""
    codes = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype(np.int32): 0x1E3D4C54}
    array = np.ascontiguousarray(array)
    dims = list(array.shape) + [1] * (3 - array.ndim)
    header = struct.pack(f"<ii{len(dims)}i", codes[array.dtype], array.ndim, *dims)
    Path(path).write_bytes(header + array.astype(array.dtype.newbyteorder("<")).tobytes())
