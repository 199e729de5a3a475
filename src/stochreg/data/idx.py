"""Reader and writer for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the data in C order. MNIST uses type 0x08 (uint8).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
    >>> write_idx(path, np.arange(5, dtype=np.uint8))
    >>> read_idx(path).tolist()
    [0, 1, 2, 3, 4]
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from ..errors import DataError

_UBYTE = 0x08


def _open(path: str, mode: str):
    return gzip.open(path, mode) if str(path).endswith(".gz") else open(path, mode)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads a uint8 IDX file (``.gz`` or raw) into a numpy array; corrupt files raise DataError."""
    path = os.fspath(path)
    try:
        with _open(path, "rb") as f:
            payload = f.read()
    except FileNotFoundError:
        raise DataError(f"missing data file {path}") from None
    except (OSError, EOFError) as exc:  # gzip's BadGzipFile and truncated streams land here
        raise DataError(f"corrupt data file {path}: {exc}") from None
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0:
        raise DataError(f"corrupt data file {path}: not an IDX file (wrong magic number)")
    type_code, ndim = payload[2], payload[3]
    if type_code != _UBYTE:
        raise DataError(f"corrupt data file {path}: IDX type 0x{type_code:02x}, expected unsigned bytes (0x08)")
    header = 4 + 4 * ndim
    if ndim == 0 or len(payload) < header:
        raise DataError(f"corrupt data file {path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", payload[4:header])
    expected = int(np.prod(shape))
    if len(payload) - header != expected:
        raise DataError(f"corrupt data file {path}: {len(payload) - header} data bytes, "
                        f"the header announces {expected} (truncated or padded)")
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, _UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with _open(os.fspath(path), "wb") as f:
        f.write(header + array.tobytes())
