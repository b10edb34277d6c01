"""The co-designed fast model (issue 14): T = 1, narrow channels, a firing-rate penalty and
quantisation-aware training against gen's integer grid; the shipped examples/mnist_fast_t1.pt.

The QAT tests check the one promise that matters: the fake-quantised folded weights that
training sees are exactly the integers gen makes (times their power-of-two scales), and the
network the optimiser trains computes exactly what gen's golden model computes.
"""
import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gen.flow.build import Context, checkpoint_wbits, step_fold_quantise
from gen.frontend.floatnet import parse_checkpoint
from gen.frontend import compile_dict
from gen.ir.golden import run
from gen.ir.reference import run_reference
from snn.checkpoint import checkpoint_dict, load_checkpoint, read_checkpoint
from snn.data import load_mnist
from snn.qat import fake_quant_forward, quantised_layers
from snn.train import TrainConfig, train
from snn.zoo import mnist_arch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnist_fast_t1.pt"
EXAMPLE_HELDOUT = 0.99  # integer (golden) accuracy on images 8000-9999, examples/README.md
TINY = dict(timesteps=1, channels=(4, 8, 8), batch_size=32, train_limit=256, heldout_limit=50, threads=1,
            augment=False)


def spikes_per_image(model, images) -> float:
    with torch.no_grad():
        _, spikes = model.run(torch.from_numpy(images), record=True)
    return float(sum(s.abs().sum() for s in spikes.values())) / len(images)


@pytest.fixture(scope="module")
def qat_model():
    """A tiny chain net: one float epoch, one epoch trained against the 4-bit grid."""
    model, history = train(TrainConfig(**TINY, epochs=2, wbits=4, qat_epochs=1, seed=3))
    return model, history


def test_t1_narrow_training_runs_and_learns():
    model, history = train(TrainConfig(**TINY, epochs=2))
    assert model.timesteps == 1
    assert [layer["out_channels"] for layer in model.arch["layers"] if layer["type"] == "conv2d"] == [4, 8, 8]
    assert all(np.isfinite(r.loss) for r in history) and history[-1].loss < history[0].loss
    assert history[-1].events_per_image > 0 and not any(r.quantised for r in history)


def test_channels_set_the_chain_arch():
    arch = mnist_arch(timesteps=1, channels=(16, 32, 32))
    convs = [layer for layer in arch["layers"] if layer["type"] == "conv2d"]
    assert [(c["in_channels"], c["out_channels"], c["stride"]) for c in convs] == [(1, 16, 1), (16, 32, 2), (32, 32, 2)]
    assert arch["layers"][-1]["in_features"] == 32 * 7 * 7
    with pytest.raises(ValueError, match="channels must be three ints"):
        mnist_arch(channels=(16, 32))
    with pytest.raises(ValueError, match="channels applies to the chain arch only"):
        TrainConfig(arch_name="resnet", channels=(4, 8, 8))


def test_rate_penalty_lowers_firing():
    images, _ = load_mnist(split="heldout", limit=100)
    fired = {}
    # Adam moves each parameter by about lr per step whatever the gradient's size: a few steps
    # need a large lr for the penalty to show (measured: about 2.3x fewer events, held-out and train).
    for penalty in (0.0, 50.0):
        model, history = train(TrainConfig(**TINY, epochs=3, lr=0.05, rate_penalty=penalty, seed=1))
        fired[penalty] = (spikes_per_image(model, images), history[-1].events_per_image)
    assert fired[50.0][0] < 0.6 * fired[0.0][0], fired
    assert fired[50.0][1] < 0.6 * fired[0.0][1], fired


def test_qat_epochs_are_the_last_ones_and_report_quantised_accuracy(qat_model):
    _, history = qat_model
    assert [r.quantised for r in history] == [False, True]
    assert TrainConfig(epochs=12, wbits=4).first_qat_epoch == 9
    with pytest.raises(ValueError, match="qat_epochs needs wbits"):
        TrainConfig(qat_epochs=2)


def test_gen_quantises_the_qat_model_onto_the_grid_training_used(qat_model):
    model, _ = qat_model
    network = compile_dict(checkpoint_dict(model, {"wbits": 4}), wbits=4).network
    with torch.no_grad():
        trained = quantised_layers(model, 4)
    assert [layer.name for layer in network.layers] == ["conv1", "conv2", "conv3", "fc"]
    for layer, stage in zip(network.layers, trained):
        scale = 2.0 ** layer.scale_exp.astype(np.float64)
        integers = layer.projections[0].weight
        weight = integers / scale.reshape((-1,) + (1,) * (integers.ndim - 1))
        assert np.array_equal(layer.scale_exp, stage["exps"].numpy().astype(np.int64)), layer.name
        assert np.array_equal(weight, stage["weight"].double().numpy()), layer.name
        assert np.array_equal(layer.bias / scale, stage["bias"].double().numpy()), layer.name
        assert int(np.abs(integers).max()) <= 7


def test_qat_forward_in_float64_is_gens_fake_quantised_model(qat_model):
    """The forward the optimiser trained (in float64) equals gen's golden model: spikes and logits."""
    model, _ = qat_model
    network = compile_dict(checkpoint_dict(model, {"wbits": 4}), wbits=4).network
    images, _ = load_mnist(split="heldout", limit=30)
    assert_training_forward_is_golden(model, network, images)


def assert_training_forward_is_golden(model, network, images):
    golden = run(network, images, record=True)
    double = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        logits, spikes = fake_quant_forward(double, torch.from_numpy(images), network.wbits)
    for layer, s in zip(network.layers, spikes):
        assert np.array_equal(golden.spikes[layer.name], s.numpy().astype(np.int8).swapaxes(0, 1)), layer.name
    readout = network.layers[-1]
    timesteps = network.timesteps
    assert np.array_equal(golden.logits, logits.numpy() * timesteps * 2.0 ** int(readout.scale_exp[0]))


def test_gen_build_takes_wbits_from_the_checkpoint_meta(qat_model, tmp_path):
    model, _ = qat_model
    ckpt = checkpoint_dict(model, {"wbits": 4})
    assert checkpoint_wbits(ckpt["meta"]) == 4 and checkpoint_wbits({}) == 8
    with pytest.raises(ValueError, match="meta wbits must be an int"):
        checkpoint_wbits({"wbits": "4"})
    for given, expected in ((None, 4), (8, 8)):
        ctx = Context(model=Path("tiny.pt"), board=None, out=tmp_path, work=tmp_path, lanes={}, images=0,
                      wbits=given, synthesise=False, state={"float_net": parse_checkpoint(ckpt, name="tiny")})
        step_fold_quantise(ctx, tmp_path)
        assert ctx.state["net"].wbits == expected


def test_train_cli_writes_wbits_and_channels(tmp_path):
    out = tmp_path / "fast.pt"
    proc = subprocess.run([sys.executable, "-m", "snn", "train", "--timesteps", "1", "--neuron", "ternary",
                           "--channels", "4,8,8", "--wbits", "4", "--qat-epochs", "1", "--epochs", "1",
                           "--rate-penalty", "0.1", "--train-limit", "64", "--heldout-limit", "50",
                           "--threads", "1", "--quiet", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "(4-bit)" in proc.stdout and "events/image" in proc.stdout
    meta = read_checkpoint(out)["meta"]
    assert meta["wbits"] == 4 and meta["train_config"]["channels"] == [4, 8, 8]
    assert meta["train_config"]["rate_penalty"] == 0.1 and meta["history"][0]["quantised"] is True
    bad = subprocess.run([sys.executable, "-m", "snn", "train", "--timesteps", "1", "--neuron", "ternary",
                          "--channels", "4,8", "--out", str(tmp_path / "x.pt")], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--channels" in bad.stderr


# --------------------------------------------------------------------------- the shipped example


@pytest.fixture(scope="module")
def example():
    if not EXAMPLE.exists():
        pytest.fail(f"{EXAMPLE} is missing")
    ckpt = read_checkpoint(EXAMPLE)
    return ckpt, compile_dict(ckpt, name="mnist_fast_t1", wbits=checkpoint_wbits(ckpt["meta"]))


def test_example_is_the_narrow_t1_chain_trained_for_4_bits(example):
    ckpt, compiled = example
    meta = ckpt["meta"]
    channels = tuple(meta["train_config"]["channels"])
    assert channels[0] <= 24 and ckpt["arch"] == mnist_arch(neuron="ternary", timesteps=1, channels=channels)
    assert meta["wbits"] == 4 and compiled.network.wbits == 4
    assert meta["split"] == {"train": [0, 8000], "heldout": [8000, 10000]}
    assert meta["train_config"]["train_limit"] is None and meta["heldout_images"] == 2000
    assert meta["command"].startswith("python -m snn train --timesteps 1 ")
    assert meta["heldout_accuracy"] >= EXAMPLE_HELDOUT  # the fake-quantised model's = the integer model's


def test_example_golden_equals_the_training_forward_and_gens_reference(example):
    ckpt, compiled = example
    images, labels = load_mnist(split="heldout", limit=40)
    network = compiled.network
    golden = run(network, images, record=True)
    fake = run_reference(network, images)
    for name in golden.spikes:
        assert np.array_equal(golden.spikes[name], fake.spikes[name]), name
    assert np.array_equal(golden.logits, fake.logit_sums * 2.0 ** int(network.readout.scale_exp[0]))
    model, _ = load_checkpoint(EXAMPLE)
    assert_training_forward_is_golden(model, network, images)
    assert (golden.classes == labels).mean() >= 0.95
