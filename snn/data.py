"""MNIST for the training side: `formats.mnist` (numpy only) is the one reader; this name stays
for snn's own modules and for scripts written against it."""
from formats.mnist import (DEFAULT_DATA_DIR, HELDOUT_RANGE, IMAGES_FILE, LABELS_FILE, SPLITS, TRAIN_RANGE,
                           DataError, load_mnist, read_idx)

__all__ = ["DEFAULT_DATA_DIR", "HELDOUT_RANGE", "IMAGES_FILE", "LABELS_FILE", "SPLITS", "TRAIN_RANGE",
           "DataError", "load_mnist", "read_idx"]
