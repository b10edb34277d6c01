"""The shipped residual example (examples/mnist_resnet_t2.pt) and `python -m snn train --arch resnet`.

The example is snn.zoo.mnist_resnet_arch: an identity and a projection shortcut. Its golden model
equals the float64 fake-quantised model at every layer and step on held-out images, and its
accuracies are the ones examples/README.md reports.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gen.frontend.floatnet import run_float
from gen.frontend import compile_checkpoint
from gen.ir.golden import run
from gen.ir import Conv2d, Identity
from gen.ir.reference import run_reference
from snn.arch import normalize_arch
from snn.checkpoint import load_checkpoint, read_checkpoint
from snn.data import load_mnist
from snn.zoo import mnist_resnet_arch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnist_resnet_t2.pt"


@pytest.fixture(scope="module")
def compiled():
    return compile_checkpoint(EXAMPLE)


def assert_golden_equals_fake_quantised(network, images):
    golden, fake = run(network, images, record=True), run_reference(network, images)
    for name in golden.spikes:
        differ = np.flatnonzero((golden.spikes[name] != fake.spikes[name]).reshape(len(images), -1).any(1))
        assert differ.size == 0, f"layer {name}: spikes differ on images {differ[:10].tolist()}"
    assert np.array_equal(golden.logits, fake.logit_sums * 2.0 ** int(network.readout.scale_exp[0]))
    return golden


def test_example_is_the_zoo_resnet_trained_on_the_training_split():
    ckpt = read_checkpoint(EXAMPLE)
    assert ckpt["arch"] == mnist_resnet_arch(neuron="ternary", timesteps=2)
    meta = ckpt["meta"]
    assert meta["split"] == {"train": [0, 8000], "heldout": [8000, 10000]}
    assert meta["train_config"]["train_limit"] is None and meta["heldout_images"] == 2000
    assert meta["command"].startswith("python -m snn train --arch resnet ")
    assert meta["heldout_accuracy"] >= 0.99


def test_example_layers_read_an_identity_and_a_projection_shortcut(compiled):
    network = compiled.network
    by_name = {layer.name: layer for layer in network.layers}
    assert [(p.source, type(p.op).__name__) for p in by_name["conv3b"].projections] == [
        ("conv3a", "Conv2d"), ("conv2", "Identity")]
    body, shortcut = by_name["conv4b"].projections
    assert (body.source, shortcut.source) == ("conv4a", "conv3b")
    assert shortcut.op == Conv2d(kernel=1, stride=2, padding=0) and shortcut.weight.shape == (64, 32, 1, 1)
    assert isinstance(by_name["conv3b"].projections[1].op, Identity)
    assert max(int(abs(p.weight).max()) for layer in network.layers for p in layer.projections) <= 127


def test_example_golden_equals_float64_fake_quantised_on_heldout_images(compiled):
    images, labels = load_mnist(split="heldout", limit=40)
    golden = assert_golden_equals_fake_quantised(compiled.network, images)
    float_classes = run_float(compiled.float_net, images).logits.argmax(1)
    assert (golden.classes == labels).mean() >= 0.95 and (float_classes == labels).mean() >= 0.95


def test_example_float_accuracy_matches_its_record_on_the_first_200():
    model, ckpt = load_checkpoint(EXAMPLE)
    images, labels = load_mnist(split="heldout", limit=200)
    with torch.no_grad():
        predicted = model(torch.from_numpy(images)).argmax(1).numpy()
    assert (predicted == labels).mean() == ckpt["meta"]["heldout_first_200_accuracy"]


@pytest.mark.slow
def test_example_reaches_99_percent_float_and_integer_and_is_exact_on_all_heldout_images(compiled):
    images, labels = load_mnist(split="heldout")
    assert len(images) == 2000
    golden = assert_golden_equals_fake_quantised(compiled.network, images)
    float_accuracy = (run_float(compiled.float_net, images).logits.argmax(1) == labels).mean()
    integer_accuracy = (golden.classes == labels).mean()
    print(f"float {100 * float_accuracy:.2f} %, integer {100 * integer_accuracy:.2f} %")
    assert float_accuracy >= 0.99 and integer_accuracy >= 0.99


def test_train_arch_resnet_from_the_command_line(tmp_path):
    """What a user types (relative paths, from the repository root), on a few images."""
    out = tmp_path / "tiny_resnet.pt"
    result = subprocess.run(
        [sys.executable, "-m", "snn", "train", "--arch", "resnet", "--width", "2", "--timesteps", "2",
         "--neuron", "binary", "--out", str(out), "--epochs", "1", "--train-limit", "64", "--heldout-limit", "50",
         "--threads", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    ckpt = read_checkpoint(out)
    assert ckpt["arch"] == normalize_arch(mnist_resnet_arch(neuron="binary", width=2))
    assert ckpt["meta"]["train_config"]["arch_name"] == "resnet"
    compile_checkpoint(out)   # gen folds it, projection shortcut included


def test_train_refuses_an_unknown_arch():
    result = subprocess.run([sys.executable, "-m", "snn", "train", "--arch", "vgg", "--timesteps", "2",
                             "--neuron", "binary", "--out", "x.pt"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'vgg' (choose from 'chain', 'resnet')" in result.stderr
