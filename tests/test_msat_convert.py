"""ANN -> SNN conversion (docs/msat.md): the float neurons, `python -m snn convert` from the
repository root, what it refuses, and what gen does with its checkpoints."""
import math
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snn.arch import normalize_arch
from snn.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from snn.convert import ConversionError, ann_stages, convert
from snn.model import build_model
from snn.msat import IFSubtract, MSATNeuron, ladder_tables
from snn.zoo import mnist_arch

ROOT = Path(__file__).resolve().parent.parent
ANN = "examples/mnist_relu_ann.pt"
MSAT_FIELDS = {"lambda": 3.0, "rule": "sigmoid", "use_dtt": True, "use_det": True, "alpha": 0.3, "ka": 1.0,
               "ki": 1.0, "C": 5.0, "tau_mp": 0.2, "tau_rd": 0.1, "ladder_steps": 0, "d_bits": 3, "x_bits": 3,
               "lut_half": 32, "z_bits": 8}


def _snn(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "snn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def authors_snode(x_abs: torch.Tensor, lam: float, f: dict) -> torch.Tensor:
    """The authors' SNode recurrence in ANN units (utils.py, VthHand = -1, γ = 1), written out."""
    mem = torch.zeros_like(x_abs[0])
    summem = torch.zeros_like(mem)
    last = torch.zeros_like(mem)
    outs = []
    for t in range(x_abs.shape[0]):
        x = x_abs[t]
        mem = mem + x
        if t == 0:
            threshold = torch.full_like(x, lam)
        else:
            vm = summem / t
            dtt = f["tau_mp"] * (f["alpha"] * (last - vm) - lam + f["ka"] * torch.log(1 + torch.exp((last - vm) / f["ki"])))
            det = f["tau_rd"] * torch.exp(-x / f["C"])
            threshold = torch.sigmoid(dtt + det) * lam
        spike = torch.floor(mem / threshold).clamp(0, 1)
        mem = mem - spike * threshold
        outs.append(spike * threshold)
        last = mem
        summem = summem + mem
    return torch.stack(outs)


def test_msat_sigmoid_rule_is_the_authors_neuron_in_normalised_units():
    torch.manual_seed(0)
    lam = 3.0
    current = torch.randn(16, 200, dtype=torch.float64) * 0.6 + 0.2   # normalised units
    s, amplitude = MSATNeuron(MSAT_FIELDS).spikes(current)
    expected = authors_snode(current * lam, lam, MSAT_FIELDS)
    assert s.any() and not s.all()
    torch.testing.assert_close(s * amplitude * lam, expected, rtol=1e-12, atol=1e-12)


def test_if_subtract_rounds_and_corrects_only_earlier_positive_spikes():
    current = torch.tensor([[0.3], [0.3], [-0.9], [-0.9], [0.1]], dtype=torch.float64)
    s, amplitude = IFSubtract({"lambda": 1.0, "signed": True}).spikes(current)
    # U: 0.3, 0.6 → +1 (R −0.4), −1.3 → −1 (balance 1, R −0.3), −1.2 (balance 0: no −1), −1.1
    assert s[:, 0].tolist() == [0, 1, -1, 0, 0]
    assert torch.equal(amplitude, torch.ones_like(s))


def test_ladder_tables_put_the_rungs_where_sigmoid_crosses_their_midpoints():
    fields = {**MSAT_FIELDS, "rule": "ladder", "ladder_steps": 4}
    lut_d, lut_x, ladder_z = ladder_tables(fields)
    assert lut_d.shape == lut_x.shape == (64,) and ladder_z.shape == (4,)
    assert np.all(np.diff(ladder_z) < 0)
    for j, z in enumerate(ladder_z, start=1):
        assert abs(1 / (1 + math.exp(-z / 256)) - 2 ** (-j + 0.5)) < 2e-3
    # DTT grows with d, DET falls with the input current
    assert np.all(np.diff(lut_d) >= 0) and np.all(np.diff(lut_x) <= 0)


def _tiny_ann(tmp_path, change=None):
    arch = mnist_arch(neuron="relu", timesteps=1, width=2)
    if change:
        change(arch)
    model = build_model(normalize_arch(arch))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p).abs() * 0.3 + 0.05)
    return save_checkpoint(model, tmp_path / "ann.pt", {"neuron": "relu"})


def test_convert_writes_a_safe_checkpoint_whose_neurons_say_their_semantics(tmp_path):
    ann = _tiny_ann(tmp_path)
    out = _snn("convert", str(ann), "--method", "msat", "--timesteps", "4", "--calibration-images", "64",
               "--heldout-limit", "20", "--rule", "ladder", "--ladder-steps", "3", "--quiet", "--threads", "1",
               "--out", str(tmp_path / "snn.pt"))
    assert out.returncode == 0, out.stderr
    ckpt = read_checkpoint(tmp_path / "snn.pt")       # weights only
    neurons = [layer for layer in ckpt["arch"]["layers"] if layer["type"] == "msat"]
    assert [n["name"] for n in neurons] == ["relu1", "relu2", "relu3"]
    assert all(n["rule"] == "ladder" and n["ladder_steps"] == 3 and n["lambda"] > 0 for n in neurons)
    assert set(ckpt["meta"]["conversion"]["lambda"]) == {"relu1", "relu2", "relu3"}
    assert ckpt["meta"]["conversion"]["calibration_images"] == 64
    assert not any(layer["type"].startswith("batchnorm") for layer in ckpt["arch"]["layers"])


def test_conversion_keeps_the_ann_exactly_before_spiking(tmp_path):
    """Folding and normalising are exact: the normalised layers times λ are the ANN's activations."""
    _, ckpt = load_checkpoint(_tiny_ann(tmp_path))
    images = np.random.default_rng(0).integers(0, 256, (16, 1, 28, 28), dtype=np.uint8)
    arch, state, facts = convert(ckpt, "if-subtract", 2, 1.0, images)
    stages = ann_stages(ckpt["arch"], ckpt["state_dict"])
    x = torch.from_numpy(images).double() / 255
    h_ann = x
    for stage, lam in zip(stages[:-1], facts["lambda"].values()):
        h_ann = torch.relu(torch.nn.functional.conv2d(h_ann, stage.weight, stage.bias, stage.stride, stage.padding))
        assert float(h_ann.max()) == pytest.approx(lam)   # percentile 1: λ is the maximum


def test_convert_refuses_what_it_cannot_convert_in_one_line(tmp_path):
    out = _snn("convert", "examples/mnist_ternary_t2.pt", "--method", "msat", "--out", str(tmp_path / "x.pt"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "not an ANN: no 'relu' layer" in out.stderr
    assert not (tmp_path / "x.pt").exists()

    def add_pool(arch):
        arch["layers"].insert(3, {"name": "pool", "type": "avgpool2d", "kernel_size": 1})
    with pytest.raises(ConversionError, match="layer 'pool': a avgpool2d layer is not converted"):
        _, ckpt = load_checkpoint(_tiny_ann(tmp_path, add_pool))
        ann_stages(ckpt["arch"], ckpt["state_dict"])


@pytest.mark.skipif(not (ROOT / ANN).exists(), reason="the shipped ANN is missing")
def test_gen_builds_a_converted_msat_model_on_msat_engines(tmp_path):
    # msat runs on the event engines now (tests/test_sim_msat_network.py proves them exact).
    out = _snn("convert", ANN, "--method", "msat", "--timesteps", "2", "--calibration-images", "32",
               "--heldout-limit", "10", "--quiet", "--threads", "1", "--out", str(tmp_path / "msat.pt"))
    assert out.returncode == 0, out.stderr
    build = subprocess.run([sys.executable, "-m", "gen", "build", str(tmp_path / "msat.pt"), "--board", "pynq-z2",
                            "--no-synth", "--out", str(tmp_path / "build")], cwd=ROOT, capture_output=True,
                           text=True, timeout=900)
    assert build.returncode == 0, build.stderr
    plan = json.loads((tmp_path / "build" / "steps" / "04_plan" / "plan.json").read_text())
    assert [layer["neuron"] for layer in plan["layers"][:-1]] == ["msat"] * (len(plan["layers"]) - 1)
