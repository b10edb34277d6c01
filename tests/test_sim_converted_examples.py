"""The shipped converted examples in hardware (issue 15, docs/msat.md): examples/mnist_if_subtract.pt
(T = 32) and examples/mnist_msat.pt (T = 64, msat events carry (address, m)), both converted from
examples/mnist_relu_small.pt, built with the default plan for pynq-z2 and bit-exact against the
golden model on held-out images on Verilator: 50 in CI, through `python -m sim run` as users type
it; back-pressure and all 2,000 are `slow`.

A file of its own so that pytest-xdist (--dist loadfile) runs it beside the random networks of
tests/test_sim_msat_network.py, not after them.
"""
from pathlib import Path

import pytest

from gen.flow.build import build
from sim.network import load_build, simulate_build
from sim_cli import run_heldout_bit_exact

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONVERTED = {"if_subtract": EXAMPLES / "mnist_if_subtract.pt", "msat": EXAMPLES / "mnist_msat.pt"}
CI_IMAGES = 50


@pytest.fixture(scope="module", params=sorted(CONVERTED))
def example_build(request, tmp_path_factory):
    """(neuron, build folder) of each example, its default plan (no lanes or engines forced)."""
    neuron = request.param
    path = CONVERTED[neuron]
    assert path.is_file(), f"{path} is missing (examples/README.md: snn convert)"
    out = tmp_path_factory.mktemp(neuron) / "build"
    build(path, out=out, images=32, synthesise=False)
    return neuron, out


def test_the_example_builds_with_its_neurons_engines(example_build):
    neuron, out = example_build
    hidden = [layer for layer in load_build(out).manifest["layers"] if layer["kind"] != "readout"]
    assert hidden and {layer["neuron"] for layer in hidden} == {neuron}


def test_fifty_held_out_images_are_bit_exact(example_build):
    _, out = example_build
    report = run_heldout_bit_exact(out, CI_IMAGES, seed=1)
    assert report["accuracy"] > 0.9


@pytest.mark.slow
def test_the_example_is_bit_exact_with_backpressure(example_build, tmp_path):
    _, out = example_build
    result = simulate_build(out, CI_IMAGES, backpressure=True, seed=2, report=tmp_path / "bp.json", quiet=True)
    assert result.ok, [str(m) for m in result.mismatches[:3]]


@pytest.mark.slow   # about 16 min of Verilator for IF-subtract, 3 h for MSAT (600 k cycles per image)
def test_all_heldout_images_are_bit_exact(example_build, tmp_path):
    _, out = example_build
    result = simulate_build(out, 2000, seed=0, report=tmp_path / "all.json", quiet=True)
    assert result.ok, [str(m) for m in result.mismatches[:10]]
    assert result.report["results"] == 2000


@pytest.mark.slow   # yosys synth_xilinx of each: minutes
@pytest.mark.parametrize("neuron", sorted(CONVERTED))
def test_the_example_fits_the_board_by_synthesis(neuron, tmp_path):
    report = build(CONVERTED[neuron], board="pynq-z2", out=tmp_path / "build", images=32)
    assert report["fits"] is True
    r = report["resources"]
    assert 0 < r["luts"]["used"] <= 53_200 and 0 < r["bram36"]["used"] <= 140
