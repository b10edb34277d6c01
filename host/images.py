"""Held-out images for the host: `formats.heldout` reads them (a deployment's .npy files, or
the repository's MNIST through `formats.mnist`); this name is the driver's public API."""
from formats.heldout import DATA_DIR, GOLDEN_NPY, IMAGES_NPY, LABELS_NPY, load_golden, load_heldout

__all__ = ["DATA_DIR", "GOLDEN_NPY", "IMAGES_NPY", "LABELS_NPY", "load_golden", "load_heldout"]
