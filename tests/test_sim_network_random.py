"""Random networks nobody tuned, built and simulated whole, bit-exact against the golden model.

Each network comes from gen.ir.random_net (random shapes, conv and dense, T, leak shift,
thresholds including asymmetric ones, ternary and binary, weights at the extremes for
some) and goes through the generator's own steps from the IR on (plan, emit, board
project, manifest), then through `sim.network.simulate_build` like any build folder.
They are tiny on purpose and run on Icarus (it compiles in about a second). Ten of them:
the model-space fuzzer's 100 models a CI run (tests/test_fuzz_models*.py) cover checkpoints
across the documented space; these keep the IR-level draws (thresholds and leak shifts on the
integer grid, asymmetric thresholds, weights at ±127).
"""
from pathlib import Path

import numpy as np
import pytest

from gen.flow.build import build_from_ir
from gen.ir.random_net import random_network
from sim.network import simulate_build
from sim.toolchain import have_icarus

NETWORKS = 10
IMAGES = 3
SIMULATOR = "icarus" if have_icarus() else "verilator"


def build_ir(net, out: Path, lanes=None) -> Path:
    """A build folder for an IR (the generator's steps from `ir` on, without lint and synthesis)."""
    build_from_ir(net, "pynq-z2", out, lanes=lanes, images=8, synthesise=False, lint=False)
    return out


def network(seed: int):
    """Seeds 0, 3, 6, ... are binary networks, the rest ternary; every other one has its
    weights at the extremes (±127)."""
    rng = np.random.default_rng(1000 + seed)
    return random_network(rng, max_layers=4, extremes=seed % 2 == 0, shortcuts=False,
                          neuron="binary" if seed % 3 == 0 else "ternary", name=f"random{seed}")


def has_binary_layer(net) -> bool:
    return any(layer.neuron == "binary" for layer in net.layers[:-1])


@pytest.mark.parametrize("seed", range(NETWORKS))
def test_random_network_is_bit_exact(seed, tmp_path):
    net = network(seed)
    out = build_ir(net, tmp_path / "build")
    result = simulate_build(out, IMAGES, simulator=SIMULATOR, seed=seed, backpressure=seed % 2 == 1,
                            quiet=True)
    assert result.ok, (f"{net.name}: " + "; ".join(map(str, result.mismatches[:3]))
                       + (f"; {result.diagnosis.summary()}" if result.diagnosis else ""))
    assert result.report["results"] == IMAGES
    assert result.report["images_source"].startswith("random images")


def test_the_random_networks_cover_what_they_claim():
    nets = [network(seed) for seed in range(NETWORKS)]
    assert sum(has_binary_layer(net) for net in nets) >= 4 and sum(not has_binary_layer(net) for net in nets) >= 6
    neurons = {layer.neuron for net in nets for layer in net.layers[:-1]}
    assert neurons == {"ternary", "binary"}
    assert len({net.timesteps for net in nets}) >= 4
    assert len({layer.leak_shift for net in nets for layer in net.layers[:-1]}) >= 3
    kinds = {type(layer.projections[0].op).__name__ for net in nets for layer in net.layers}
    assert {"Conv2d", "Dense"} <= kinds
    assert any(np.any(layer.theta_neg != -layer.theta_pos) for net in nets for layer in net.layers[:-1]
               if layer.neuron == "ternary")
    qmax = 2 ** (nets[0].wbits - 1) - 1
    assert any(np.all(np.abs(layer.projections[0].weight) == qmax) for net in nets for layer in net.layers)


@pytest.mark.skipif(not have_icarus(), reason="Icarus Verilog is not installed")
def test_cli_json_report_and_waves_of_the_first_images(tmp_path):
    import json
    import subprocess
    import sys

    out = build_ir(network(1), tmp_path / "build")
    res = subprocess.run([sys.executable, "-m", "sim", "run", str(out), "--images", "4", "--simulator", "icarus",
                          "--seed", "9", "--waves", "--json", "--report", str(tmp_path / "r.json")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    assert report == json.loads((tmp_path / "r.json").read_text())
    assert report["bit_exact"] and report["seed"] == 9 and report["simulator"] == "icarus"
    assert report["waves"]["images"] == 2
    assert Path(report["waves"]["file"]).is_file() and Path(report["waves"]["file"]).stat().st_size > 0


@pytest.mark.skipif(not have_icarus(), reason="Icarus Verilog is not installed")
def test_single_neuron_layer_before_the_readout(tmp_path):
    """2×5×5 → dense 4 → dense 1 → readout 4, T = 5: the readout's fan-in is one neuron, which
    never fires here, and b[0] = 0, so logit 0 is 0 in every image. Its result field came out X
    on Icarus (tests/test_hw_readout.py::test_readout_with_one_input_has_no_x_on_icarus)."""
    net = random_network(np.random.default_rng(1002), max_layers=4, extremes=False, shortcuts=False, neuron=None,
                         name="random_fanin1")
    assert net.layers[-2].shape == (1,)
    result = simulate_build(build_ir(net, tmp_path / "build"), IMAGES, simulator="icarus", seed=2, quiet=True)
    assert result.ok, "; ".join(map(str, result.mismatches[:3]))
