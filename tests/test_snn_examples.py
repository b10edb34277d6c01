"""The shipped example checkpoints: they load safely and score what their meta records.

The default run measures the first 200 held-out images (a few seconds); the `slow` test
measures all 2,000 and holds the ternary model to the project's bar of 99.0 %.
"""
from pathlib import Path

import pytest

from snn.checkpoint import load_checkpoint
from snn.data import load_mnist
from snn.evaluate import accuracy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TERNARY = EXAMPLES / "mnist_ternary_t2.pt"
BINARY = EXAMPLES / "mnist_binary_t2.pt"


def _shipped(path):
    if not path.exists():
        pytest.fail(f"{path} is missing: it is committed with the repository (see examples/README.md)")
    return path


@pytest.mark.parametrize("path, neuron", [(TERNARY, "ternary"), (BINARY, "binary")])
def test_example_loads_and_matches_its_meta_on_200_heldout_images(path, neuron):
    model, ckpt = load_checkpoint(_shipped(path))
    meta = ckpt["meta"]
    assert path.stat().st_size < 2 * 1024 * 1024
    assert meta["neuron"] == neuron and meta["timesteps"] == 2 == ckpt["arch"]["timesteps"]
    assert {layer["neuron"] for layer in ckpt["arch"]["layers"] if layer["type"] == "lif"} == {neuron}
    assert meta["split"] == {"train": [0, 8000], "heldout": [8000, 10000]}
    assert meta["heldout_images"] == 2000
    assert meta["command"].startswith("python -m snn train ") and f"--neuron {neuron}" in meta["command"]
    images, labels = load_mnist(split="heldout", limit=200)
    assert accuracy(model, images, labels) == meta["heldout_first_200_accuracy"]


def test_both_examples_share_one_architecture_apart_from_the_neuron():
    _, ternary = load_checkpoint(_shipped(TERNARY))
    _, binary = load_checkpoint(_shipped(BINARY))
    strip = [{k: v for k, v in layer.items() if k != "neuron"} for layer in ternary["arch"]["layers"]]
    assert strip == [{k: v for k, v in layer.items() if k != "neuron"} for layer in binary["arch"]["layers"]]


@pytest.mark.slow
@pytest.mark.parametrize("path", [TERNARY, BINARY])
def test_example_full_heldout_accuracy_equals_its_meta(path):
    model, ckpt = load_checkpoint(_shipped(path))
    images, labels = load_mnist(split="heldout")
    assert accuracy(model, images, labels) == ckpt["meta"]["heldout_accuracy"]


@pytest.mark.slow
def test_ternary_example_scores_at_least_99_percent_on_all_2000_heldout_images():
    model, _ = load_checkpoint(_shipped(TERNARY))
    images, labels = load_mnist(split="heldout")
    assert accuracy(model, images, labels) >= 0.990
