"""MNIST from IDX `.gz` files, with the project's fixed split (SPEC §6).

numpy only: the trainer (snn.data re-exports it), the compiler, the simulator and the host
read images through this module.
The split is fixed for every figure Tern quotes: images 0–7999 of the t10k file train,
images 8000–9999 are held out for every accuracy figure.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

TRAIN_RANGE = (0, 8000)
HELDOUT_RANGE = (8000, 10000)
SPLITS = {"train": TRAIN_RANGE, "heldout": HELDOUT_RANGE, "all": (0, 10000)}
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"

# IDX type codes (third byte of the magic number) -> numpy dtype
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ValueError):
    """A data file is missing, truncated or not in IDX format."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or plain) into an array of its declared shape."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path} (expected an IDX file such as {IMAGES_FILE})")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file: bad magic number {raw[:4].hex() or '(empty)'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: header declares {ndim} dimensions")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path} is corrupt: shape {shape} needs {expected} bytes, file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(data_dir: str | os.PathLike | None = None, split: str = "heldout",
               limit: int | None = None, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 [N, 1, 28, 28] and labels as int64 [N] for one split.

    `start` and `limit` select a window inside the split (e.g. the first 50 held-out images).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, not {split!r}")
    data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    if not data_dir.is_dir():
        raise DataError(f"data directory not found: {data_dir} (expected {IMAGES_FILE} and {LABELS_FILE} in it)")
    images = read_idx(data_dir / IMAGES_FILE)
    labels = read_idx(data_dir / LABELS_FILE)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{data_dir}: images {images.shape} and labels {labels.shape} do not match")
    lo, hi = SPLITS[split]
    if len(images) < hi:
        raise DataError(f"{data_dir}: split {split!r} needs {hi} images, the file has {len(images)}")
    if start < 0 or (limit is not None and limit < 0):
        raise ValueError(f"start and limit must be >= 0, not {start!r} and {limit!r}")
    lo = lo + start
    hi = hi if limit is None else min(hi, lo + limit)
    return images[lo:hi, None, :, :].copy(), labels[lo:hi].astype(np.int64)
