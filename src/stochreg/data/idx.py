"""Reader and writer for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the data in C order, big-endian. MNIST uses type 0x08
(uint8); the format also defines int8, int16, int32, float32 and float64, read here too so that
a user's own IDX files are checked (NaN, range) rather than refused.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
    >>> write_idx(path, np.arange(5, dtype=np.uint8))
    >>> read_idx(path).tolist()
    [0, 1, 2, 3, 4]
"""
from __future__ import annotations

import gzip
import math
import os
import struct

import numpy as np

from ..errors import DataError

_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# The four files of an MNIST-format dataset, as the mirrors name them.
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")



def _open(path: str, mode: str):
    return gzip.open(path, mode) if str(path).endswith(".gz") else open(path, mode)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (``.gz`` or raw) into a numpy array; corrupt files raise DataError."""
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
    if type_code not in _TYPES:
        raise DataError(f"corrupt data file {path}: unknown IDX type code 0x{type_code:02x}")
    dtype = _TYPES[type_code]
    header = 4 + 4 * ndim
    if ndim == 0 or len(payload) < header:
        raise DataError(f"corrupt data file {path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", payload[4:header])
    expected = math.prod(shape) * dtype.itemsize   # Python integers: no overflow on a nonsense header
    if expected > 16 * max(1, len(payload) - header):
        raise DataError(f"corrupt data file {path}: not an IDX file (its header announces a "
                        f"{' x '.join(map(str, shape))} array, far more than the file's {len(payload)} bytes)")
    if len(payload) - header != expected:
        raise DataError(f"corrupt data file {path}: {len(payload) - header} data bytes, "
                        f"the header announces {expected} (truncated or padded)")
    return np.frombuffer(payload, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes an array of an IDX type as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    codes = {dtype.newbyteorder("=") if dtype.itemsize > 1 else dtype: code for code, dtype in _TYPES.items()}
    native = np.dtype(array.dtype).newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX has no type for {array.dtype}")
    code = codes[native]
    array = np.ascontiguousarray(array, dtype=_TYPES[code])
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with _open(os.fspath(path), "wb") as f:
        f.write(header + array.tobytes())
