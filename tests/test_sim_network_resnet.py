"""`python -m sim run` on the shipped residual example (examples/mnist_resnet_t2.pt): the
engines joined along the IR's edges (forks into the identity and projection shortcuts, the
two-projection engines' end-of-step joins), bit-exact on held-out images.

As tests/test_sim_network.py does for the chain: one module-scoped build without synthesis
(resources: docs/measured.md; `python -m gen build ... --board pynq-z2` synthesises and fits),
the Verilator model compiled once into the build folder and reused, the golden model on the
build's IR, nothing mocked.
"""
from pathlib import Path

import pytest

from sim.network import load_build, simulate_build
from sim_cli import run_heldout_bit_exact

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mnist_resnet_t2.pt"
CI_IMAGES = 50


@pytest.fixture(scope="module")
def resnet_build(tmp_path_factory):
    if not EXAMPLE.exists():
        pytest.fail(f"{EXAMPLE} is missing: it is committed with the repository")
    from gen.flow.build import build

    out = tmp_path_factory.mktemp("resnet") / "build"
    build(EXAMPLE, out=out, images=32, synthesise=False)
    return out


def check_report(report, images, backpressure):
    assert report["images"] == report["results"] == images
    assert report["mismatches"] == 0 and report["bit_exact"]
    assert report["backpressure"] is backpressure
    assert report["registers"]["IMAGES_IN"] == report["registers"]["IMAGES_OUT"] == images
    assert report["registers"]["ERRORS"] == 0
    assert report["accuracy"] is not None and report["accuracy"] > 0.9


def test_the_build_is_a_graph_with_forks_and_joins(resnet_build):
    manifest = load_build(resnet_build).manifest
    by_name = {layer["name"]: layer for layer in manifest["layers"]}
    assert [(i["source"], i["stream"]) for i in by_name["conv3b"]["inputs"]] == \
        [("conv3a", "events_in"), ("conv2", "events_in1")]
    assert [(i["source"], i["stream"]) for i in by_name["conv4b"]["inputs"]] == \
        [("conv4a", "events_in"), ("conv3b", "events_in1")]
    consumers = {}
    for edge in manifest["edges"]:
        consumers.setdefault(edge["from"], []).append(edge["to"])
    assert consumers["conv2"] == ["conv3a", "conv3b"] and consumers["conv3b"] == ["conv4a", "conv4b"]
    top = (resnet_build / manifest["top"]["file"]).read_text()
    assert "fork_conv2" in top and "fork_conv3b" in top


def test_ci_subset_is_bit_exact_on_verilator_back_to_back(resnet_build):
    report = run_heldout_bit_exact(resnet_build, CI_IMAGES, seed=1)
    check_report(report, CI_IMAGES, backpressure=False)


def test_ci_subset_is_bit_exact_with_backpressure(resnet_build, tmp_path):
    result = simulate_build(resnet_build, CI_IMAGES, backpressure=True, seed=2, report=tmp_path / "bp.json",
                            quiet=True)
    assert result.ok, [str(m) for m in result.mismatches]
    check_report(result.report, CI_IMAGES, backpressure=True)


def test_probes_see_every_spike_of_every_layer_once(resnet_build, tmp_path):
    """The probes watch each layer's output before its fork (conv2's feeds conv3a and conv3b,
    conv3b's conv4a and conv4b): the event layers' event streams and the default build's dense
    layers' (conv1, conv2) spike maps. Every spike map equals the golden model's."""
    result = simulate_build(resnet_build, 1, start=3, debug=True, seed=4, report=tmp_path / "d.json", quiet=True)
    diagnosis = result.diagnosis
    assert result.ok and diagnosis.first is None and diagnosis.logits is None, diagnosis.summary()
    layers = load_build(resnet_build).manifest["layers"]
    event_layers = {l["name"] for l in layers if l["kind"] != "readout" and l["engine_family"] == "event"}
    dense_layers = {l["name"] for l in layers if l["kind"] != "readout" and l["engine_family"] == "dense"}
    assert {"conv3a", "conv3b", "conv4a", "conv4b"} <= event_layers and {"conv1", "conv2"} <= dense_layers
    assert set(diagnosis.layers) == event_layers | dense_layers
    assert not any("could not be probed" in note for note in diagnosis.notes), diagnosis.notes
    for name, counts in diagnosis.layers.items():
        assert counts["differing"] == 0 and counts["events"] == counts["golden_events"] > 0, (name, counts)


@pytest.mark.slow
def test_all_heldout_images_are_bit_exact(resnet_build):
    result = simulate_build(resnet_build, 2000, seed=0, quiet=True)
    assert result.ok, [str(m) for m in result.mismatches[:10]]
    assert result.report["results"] == 2000
