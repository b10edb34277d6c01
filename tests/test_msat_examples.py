"""The shipped ANNs and the two conversions of the small one (examples/README.md, docs/msat.md):
what they are, that the golden model equals the float64 reference on them, and (slow) that the
integer model stays within 0.5 points of its ANN on the held-out images."""
from pathlib import Path

import numpy as np
import pytest

from gen.ir import golden
from gen.frontend import compile_checkpoint
from gen.ir.reference import run_reference
from snn.checkpoint import load_checkpoint, read_checkpoint
from snn.data import load_mnist
from snn.evaluate import accuracy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The converted examples come from the small ANN (8/16/16 channels: an MSAT network that size fits
# the board's block RAM); the width-32 one is the conversion tests' (tests/test_msat_convert.py).
ANN = EXAMPLES / "mnist_relu_small.pt"
ANNS = {EXAMPLES / "mnist_relu_ann.pt": 0.99, ANN: 0.985}
CONVERTED = {"if_subtract": EXAMPLES / "mnist_if_subtract.pt", "msat": EXAMPLES / "mnist_msat.pt"}


@pytest.mark.parametrize("path", sorted(ANNS), ids=lambda p: p.stem)
def test_the_ann_is_a_relu_network_trained_on_the_training_split(path):
    ckpt = read_checkpoint(path)
    kinds = [layer["type"] for layer in ckpt["arch"]["layers"]]
    assert kinds.count("relu") == 3 and "lif" not in kinds
    assert ckpt["meta"]["split"] == {"train": [0, 8000], "heldout": [8000, 10000]}
    assert ckpt["meta"]["heldout_accuracy"] >= ANNS[path]
    assert ckpt["meta"]["command"].endswith(f"--out examples/{path.name}")


@pytest.mark.parametrize("neuron", sorted(CONVERTED))
def test_converted_examples_record_their_semantics_and_source(neuron):
    ckpt = read_checkpoint(CONVERTED[neuron])
    neurons = [layer for layer in ckpt["arch"]["layers"] if layer["type"] == neuron]
    assert len(neurons) == 3 and all(layer["lambda"] > 0 for layer in neurons)
    conversion = ckpt["meta"]["conversion"]
    assert conversion["source"] == f"examples/{ANN.name}"
    assert conversion["lambda"] == {layer["name"]: layer["lambda"] for layer in neurons}
    assert ckpt["meta"]["command"].startswith(f"python -m snn convert examples/{ANN.name}")


@pytest.mark.parametrize("neuron", sorted(CONVERTED))
def test_golden_equals_the_float64_reference_on_held_out_images(neuron):
    net = compile_checkpoint(CONVERTED[neuron]).network
    images, _ = load_mnist(split="heldout", limit=8)
    g = golden.run(net, images, record=True)
    r = run_reference(net, images)
    assert np.array_equal(g.logits * 2.0 ** -int(net.readout.scale_exp[0]), r.logit_sums)
    for name in g.spikes:
        assert np.array_equal(g.spikes[name], r.spikes[name]), name
    for name in g.ladders:
        assert np.array_equal(g.ladders[name], r.ladders[name]), name
    assert sum(int(e.sum()) for e in g.events.values()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("neuron", sorted(CONVERTED))
def test_integer_model_is_within_half_a_point_of_the_ann(neuron):
    images, labels = load_mnist(split="heldout")
    ann, _ = load_checkpoint(ANN)
    integer = golden.run(compile_checkpoint(CONVERTED[neuron]).network, images).classes
    assert float((integer == labels).mean()) >= accuracy(ann, images, labels) - 0.005
