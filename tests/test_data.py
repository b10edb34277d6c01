"""The MNIST loader: the fixed split of SPEC §6 and clear errors for bad files."""
import gzip

import numpy as np
import pytest

from snn.data import DataError, load_mnist, read_idx


def test_heldout_split_is_images_8000_to_9999():
    images, labels = load_mnist(split="heldout")
    everything, all_labels = load_mnist(split="all")
    assert images.shape == (2000, 1, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images[:, 0], everything[8000:10000, 0])
    assert np.array_equal(labels, all_labels[8000:])
    assert set(np.unique(labels)) == set(range(10))


def test_train_split_is_images_0_to_7999_and_window():
    images, labels = load_mnist(split="train", start=10, limit=5)
    everything, all_labels = load_mnist(split="all")
    assert images.shape == (5, 1, 28, 28)
    assert np.array_equal(images[:, 0], everything[10:15, 0])
    assert np.array_equal(labels, all_labels[10:15])


def test_window_never_leaves_its_split():
    images, _ = load_mnist(split="train", start=7990, limit=100)
    assert len(images) == 10


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(DataError, match="data directory not found"):
        load_mnist(tmp_path / "absent")


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(bad)


def test_truncated_idx_is_a_clear_error(tmp_path):
    header = bytes([0, 0, 8, 3]) + (4).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(header + b"\x00" * 100))
    with pytest.raises(DataError, match="corrupt"):
        read_idx(path)


def test_not_idx_is_a_clear_error(tmp_path):
    path = tmp_path / "text.gz"
    path.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(DataError, match="bad magic number"):
        read_idx(path)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist(split="test")
