"""`python -m sim run`: the shipped MNIST example through the generated AXI top, bit-exact.

One module-scoped build of examples/mnist_ternary_t2.pt (no synthesis: resources are the
benchmark's business) feeds every simulation here; the Verilator model is compiled once
into the build folder and reused. Held-out images, the golden model on the build's IR,
the manifest's packing and register map: nothing is mocked.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.network import BuildFolderError, load_build, simulate_build
from sim_cli import run_heldout_bit_exact
from sim.toolchain import have_icarus

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mnist_ternary_t2.pt"
CI_IMAGES = 50


def sim_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "sim", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def example_build(tmp_path_factory):
    if not EXAMPLE.exists():
        pytest.fail(f"{EXAMPLE} is missing: it is committed with the repository")
    from gen.flow.build import build

    out = tmp_path_factory.mktemp("mnist") / "build"
    build(EXAMPLE, out=out, images=32, synthesise=False)
    return out


@pytest.fixture(scope="module")
def event_build(tmp_path_factory):
    """The example on the event-driven engines only: --debug probes event streams between
    layers, and the default build (all dense on this model) sends spike maps instead."""
    from gen.flow.build import build
    from gen.frontend import compile_checkpoint

    out = tmp_path_factory.mktemp("mnist_event") / "build"
    layers = compile_checkpoint(EXAMPLE).network.layers
    build(EXAMPLE, out=out, images=32, synthesise=False, engines={layer.name: "event" for layer in layers})
    return out


# --------------------------------------------------------------------------- bad input


def test_missing_build_folder_is_one_line_and_exit_2(tmp_path):
    res = sim_cli("run", tmp_path / "nope", "--images", 1)
    assert res.returncode == 2
    assert res.stderr.strip() == f"python -m sim run: build folder not found: {tmp_path / 'nope'}"
    assert "Traceback" not in res.stderr


def test_folder_without_manifest_is_refused(tmp_path):
    (tmp_path / "rtl").mkdir()
    res = sim_cli("run", tmp_path, "--images", 1)
    assert res.returncode == 2
    assert res.stderr.startswith(f"python -m sim run: {tmp_path} is not a complete build: no manifest.json")
    assert len(res.stderr.strip().splitlines()) == 1


def test_manifest_naming_missing_files_is_refused(example_build, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    manifest = json.loads((example_build / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BuildFolderError, match=f"{broken} is incomplete: missing rtl/"):
        load_build(broken)


def test_too_many_images_and_bad_counts_are_refused(example_build):
    res = sim_cli("run", example_build, "--images", 10, "--start", 1995)
    assert res.returncode == 2
    assert "start + images must be at most 2000 (the held-out set), not 2005" in res.stderr
    with pytest.raises(ValueError, match="images must be a positive integer, not 0"):
        simulate_build(example_build, 0)


# --------------------------------------------------------------------------- bit-exact runs


def check_report(report, images, backpressure):
    assert report["images"] == report["results"] == images
    assert report["mismatches"] == 0 and report["bit_exact"]
    assert report["backpressure"] is backpressure
    assert report["registers"]["IMAGES_IN"] == report["registers"]["IMAGES_OUT"] == images
    assert report["registers"]["ERRORS"] == 0
    assert 0 < report["cycles_per_image"] <= report["latency_cycles"] * 2
    assert report["images_per_second_at_100mhz"] == pytest.approx(1e8 / report["cycles_per_image"], rel=1e-3)
    for layer in report["layers"]:
        # Useful SOPs per lane-cycle of an event engine: at most one, up to the pipelining of the
        # window's edges. A dense lane adds a whole window per cycle: no utilisation is given.
        if layer["engine_family"] == "event":
            assert 0 < layer["lane_utilisation"] <= 1.05, layer
        else:
            assert layer["engine_family"] == "dense" and layer["lane_utilisation"] is None, layer
    assert report["accuracy"] is not None and report["accuracy"] > 0.8


def test_ci_subset_is_bit_exact_on_verilator_back_to_back(example_build):
    report = run_heldout_bit_exact(example_build, CI_IMAGES, seed=1)
    check_report(report, CI_IMAGES, backpressure=False)


def test_ci_subset_is_bit_exact_with_backpressure(example_build, tmp_path):
    result = simulate_build(example_build, CI_IMAGES, start=CI_IMAGES, backpressure=True, seed=2,
                            report=tmp_path / "bp.json", quiet=True)
    assert result.ok, [str(m) for m in result.mismatches]
    check_report(result.report, CI_IMAGES, backpressure=True)
    assert json.loads((tmp_path / "bp.json").read_text())["seed"] == 2


@pytest.mark.slow
@pytest.mark.skipif(not have_icarus(), reason="Icarus Verilog is not installed")
def test_icarus_agrees_on_mnist(example_build, tmp_path):
    """Icarus runs this design at a few hundred cycles per second (one image is ~340k
    cycles), so MNIST on Icarus is a slow test; the random networks run on Icarus in CI."""
    result = simulate_build(example_build, 1, start=100, simulator="icarus", seed=3,
                            report=tmp_path / "icarus.json", quiet=True)
    assert result.ok, [str(m) for m in result.mismatches]
    assert result.report["simulator"] == "icarus" and result.report["results"] == 1


# --------------------------------------------------------------------------- diagnosis


def test_probes_see_every_spike_of_every_layer(event_build, tmp_path):
    """--debug probes the event streams inside the top: on a correct design every layer's
    spike map equals the golden model's, so the diagnosis finds nothing to blame."""
    assert {layer["engine_family"] for layer in load_build(event_build).manifest["layers"]} == {"event"}
    result = simulate_build(event_build, 1, start=7, debug=True, seed=4, report=tmp_path / "d.json", quiet=True)
    diagnosis = result.diagnosis
    assert result.ok and diagnosis is not None
    assert diagnosis.first is None and diagnosis.logits is None, diagnosis.summary()
    build = load_build(event_build)
    assert set(diagnosis.layers) == {layer.name for layer in build.net.layers[:-1]}
    for name, counts in diagnosis.layers.items():
        assert counts["differing"] == 0 and counts["events"] == counts["golden_events"] > 0, (name, counts)


def test_diagnosis_names_the_first_wrong_spike(event_build):
    """A fault planted in the probed events of the second layer is found there, at its step
    and neuron, with both values; the first layer stays clean."""
    from gen.ir.golden import run
    from sim.diagnose import diagnose
    from sim.network import load_images, run_simulator

    build = load_build(event_build)
    images, _, _ = load_images(build.net, 1, start=7)
    raw = run_simulator(build, images, probe=True, seed=5, quiet=True)
    golden = run(build.net, images, record=True)
    second = build.net.layers[1].name
    events = raw.probes[second].copy()
    step, addr, neg = (int(v) for v in events[len(events) // 2])
    events[len(events) // 2, 2] = 1 - neg                 # flip one spike's polarity
    raw.probes[second] = events
    diagnosis = diagnose(build, golden, raw, image=7)
    first = diagnosis.first
    assert (first.layer, first.step, first.neuron) == (second, step, addr)
    assert (first.hardware, first.golden) == (1 - 2 * (1 - neg), 1 - 2 * neg)
    assert diagnosis.layers[build.net.layers[0].name]["differing"] == 0
    assert f"layer {second}, step {step}, neuron {addr}" in diagnosis.summary()


# --------------------------------------------------------------------------- the full held-out set


@pytest.mark.slow
def test_all_heldout_images_are_bit_exact(example_build):
    result = simulate_build(example_build, 2000, seed=0, quiet=True)
    assert result.ok, [str(m) for m in result.mismatches[:10]]
    assert result.report["results"] == 2000
