"""Held-out images: the deployment's .npy files, or the repository's MNIST.

A deployment (gen/flow/deploy.py) ships the held-out split as `data/heldout_images.npy` (uint8
[N, C, H, W]) and `data/heldout_labels.npy` (int64 [N]) beside manifest.json, so the board
needs neither the IDX files nor the training code, and `data/golden_classes.npy`: what the
golden model (gen.ir.golden on the build's IR) says for each image, so that the board checks
its own results bit for bit. In the repository, `formats.mnist` reads the same split from
data/mnist/. `gen deploy` writes these files with the names defined here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import NotATernBuild
from .mnist import DEFAULT_DATA_DIR, load_mnist

DATA_DIR = "data"
IMAGES_NPY = "heldout_images.npy"
LABELS_NPY = "heldout_labels.npy"
GOLDEN_NPY = "golden_classes.npy"      # the golden model's classes for the shipped images


def _check_count(name: str, value, lo: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value!r}")
    return int(value)


def _load_npy(path: Path, what: str, mmap: bool = False) -> np.ndarray:
    """A .npy array written by gen deploy; anything else (garbage, a pickle, a truncated file)
    is refused as what it is, naming the file and what was expected."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise NotATernBuild(f"{path} must be a numpy .npy file of {what} (as python -m gen deploy writes "
                            f"it), and cannot be read as one") from None


def load_heldout(folder=None, limit: int | None = None, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [N, C, H, W], int64 labels [N]) of the held-out split.

    Looks for `<folder>/data/*.npy` (a deployment) first, then the repository's MNIST files.
    """
    limit = _check_count("limit", limit, 0)
    start = _check_count("start", start, 0)
    if folder is not None:
        data = Path(folder) / DATA_DIR
        if (data / IMAGES_NPY).is_file():
            images = _load_npy(data / IMAGES_NPY, "uint8 images [N, C, H, W]", mmap=True)
            labels = _load_npy(data / LABELS_NPY, "integer labels [N]")
            if images.dtype != np.uint8 or images.ndim != 4 or labels.ndim != 1 \
                    or len(labels) != len(images) or labels.dtype.kind not in "iu":
                raise NotATernBuild(f"{data}: {IMAGES_NPY} must hold uint8 images [N, C, H, W] and {LABELS_NPY} "
                                    f"their N integer labels, not {images.dtype} {list(images.shape)} and "
                                    f"{labels.dtype} {list(labels.shape)}")
            stop = len(images) if limit is None else min(len(images), start + limit)
            return np.ascontiguousarray(images[start:stop]), labels[start:stop].astype(np.int64)
    if not DEFAULT_DATA_DIR.is_dir():    # on a board: only a deployment's .npy files exist
        raise FileNotFoundError(f"no held-out images: {Path(folder or '.') / DATA_DIR / IMAGES_NPY} is missing "
                                f"and so is the Tern repository's {DEFAULT_DATA_DIR}")
    return load_mnist(split="heldout", limit=limit, start=start)


def load_golden(folder, limit: int | None = None, start: int = 0) -> np.ndarray | None:
    """The golden model's classes that a deployment ships for its images, or None."""
    limit = _check_count("limit", limit, 0)
    start = _check_count("start", start, 0)
    path = Path(folder) / DATA_DIR / GOLDEN_NPY
    if not path.is_file():
        return None
    classes = _load_npy(path, "integer classes [N]")
    if classes.ndim != 1 or classes.dtype.kind not in "iu":
        raise NotATernBuild(f"{path}: must hold integer classes [N], not {classes.dtype} {list(classes.shape)}")
    stop = len(classes) if limit is None else min(len(classes), start + limit)
    return classes[start:stop].astype(np.int64)
