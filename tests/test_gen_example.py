"""End to end on real MNIST images: the golden model equals the float64 fake-quantised model at every
layer and step, and the integer accuracy stays within 0.3 points of the float accuracy.

The shipped example (examples/mnist_ternary_t2.pt) is committed: a missing one fails (a skip
would turn a broken checkout green). A random MNIST-shaped checkpoint runs too.
"""
from pathlib import Path

import numpy as np
import pytest

from gen.frontend.floatnet import run_float
from gen.frontend import compile_checkpoint, compile_dict
from gen.ir.golden import run
from gen.ir.random_net import random_checkpoint
from gen.ir.reference import run_reference
from snn.data import load_mnist

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_ternary_t2.pt"


def assert_exact(net, images):
    g = run(net, images, record=True)
    r = run_reference(net, images)
    for name in g.spikes:
        mismatched = np.flatnonzero((g.spikes[name] != r.spikes[name]).reshape(len(images), -1).any(1))
        assert mismatched.size == 0, f"layer {name}: spikes differ on images {mismatched[:10].tolist()}"
    assert np.array_equal(g.logits, r.logit_sums * 2.0 ** int(net.readout.scale_exp[0]))
    return g


def check_accuracy(compiled, images, labels, tolerance_points=0.3):
    g = assert_exact(compiled.network, images)
    float_acc = float((run_float(compiled.float_net, images).logits.argmax(1) == labels).mean())
    int_acc = float((g.classes == labels).mean())
    assert abs(float_acc - int_acc) * 100 <= tolerance_points, (float_acc, int_acc)
    return float_acc, int_acc


def test_the_example_is_in_the_repository():
    assert EXAMPLE.is_file(), f"{EXAMPLE} is missing: it is committed (git checkout, or git lfs pull)"


def test_random_mnist_checkpoint_is_exact_on_heldout_images():
    compiled = compile_dict(random_checkpoint(11, input_shape=(1, 28, 28), pool=True, residual=True, timesteps=2))
    images, _ = load_mnist(split="heldout", limit=100)
    assert_exact(compiled.network, images)


def test_example_is_exact_and_accurate_on_100_heldout_images():
    images, labels = load_mnist(split="heldout", limit=100)
    check_accuracy(compile_checkpoint(EXAMPLE), images, labels, tolerance_points=1.0)  # 1 image = 1 point here


@pytest.mark.slow
def test_example_is_exact_and_accurate_on_all_heldout_images():
    images, labels = load_mnist(split="heldout")
    assert len(images) == 2000
    float_acc, int_acc = check_accuracy(compile_checkpoint(EXAMPLE), images, labels)
    print(f"float accuracy {100 * float_acc:.2f} %, integer accuracy {100 * int_acc:.2f} %")
