"""Converted neurons (issue 15, docs/msat.md) in hardware: random if_subtract networks built
from the IR by the generator's own steps (plan, emit, manifest) and simulated whole,
bit-exact against the golden model, with and without back-pressure, shortcuts included.
msat has no engine yet: the plan refuses it naming the layer.

Tiny on purpose (Icarus compiles each in about a second), like tests/test_sim_network_random.py.
"""
import numpy as np
import pytest

from gen import golden
from gen.build import build_from_ir
from gen.errors import PlanError
from gen.random_net import random_images, random_network
from sim.network import simulate_build
from sim.toolchain import have_icarus

# Seeds 0-7 plain chains; 9 and 25 draw a dense shortcut into a hidden layer (two projections
# summed by one engine), the first seeds that do and keep the readout at one projection (its
# engine takes one).
SHORTCUT_SEEDS = (9, 25)
SEEDS = tuple(range(8)) + SHORTCUT_SEEDS
IMAGES = 3
SIMULATOR = "icarus" if have_icarus() else "verilator"


def network(seed: int, neuron: str = "if_subtract"):
    """Every other one has its weights at the extremes."""
    rng = np.random.default_rng(5000 + seed)
    return random_network(rng, max_layers=4, extremes=seed % 2 == 0, shortcuts=seed in SHORTCUT_SEEDS,
                          timesteps=int(rng.integers(2, 9)), neuron=neuron, name=f"{neuron}{seed}")


@pytest.mark.parametrize("seed", SEEDS)
def test_random_if_subtract_network_is_bit_exact(seed, tmp_path):
    net = network(seed)
    out = tmp_path / "build"
    build_from_ir(net, "pynq-z2", out, images=8, synthesise=False, lint=False)
    result = simulate_build(out, IMAGES, simulator=SIMULATOR, seed=seed, backpressure=seed % 2 == 1, quiet=True)
    assert result.ok, (f"{net.name}: " + "; ".join(map(str, result.mismatches[:3]))
                       + (f"; {result.diagnosis.summary()}" if result.diagnosis else ""))
    assert result.report["results"] == IMAGES


def test_the_if_subtract_networks_fire_both_signs_and_take_back():
    """The networks above are worth simulating: their hidden layers send +1 and −1 (the signed
    correction), some layer is unsigned, some has several projections."""
    nets = [network(seed) for seed in SEEDS]
    signs = set()
    for net in nets:
        result = golden.run(net, random_images(np.random.default_rng(0), net.input_shape, 8), record=True)
        for spikes in result.spikes.values():
            signs |= set(np.unique(spikes).tolist())
    assert signs == {-1, 0, 1}
    hidden = [layer for net in nets for layer in net.layers[:-1]]
    assert {layer.neuron for layer in hidden} == {"if_subtract"}
    assert {layer.tables.signed for layer in hidden} == {True, False}
    assert any(len(layer.projections) > 1 for layer in hidden)


def test_msat_is_refused_naming_the_layer(tmp_path):
    net = network(0, neuron="msat")
    with pytest.raises(PlanError, match=f"layer '{net.layers[0].name}': neuron msat has no hardware engine yet"):
        build_from_ir(net, "pynq-z2", tmp_path / "build", images=8, synthesise=False, lint=False)
