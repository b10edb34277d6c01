"""Converted neurons (issue 15, docs/msat.md) in hardware: random if_subtract, msat and mixed
networks built from the IR by the generator's own steps (plan, emit, manifest) and simulated
whole, bit-exact against the golden model, with and without back-pressure, shortcuts included
(msat events carry (address, m); the next layer adds W << (M − m)). The shipped IF-subtract and
MSAT examples are tests/test_sim_converted_examples.py.

Tiny on purpose (Icarus compiles each in about a second), like tests/test_sim_network_random.py.
"""
import numpy as np
import pytest

from gen.ir import golden
from gen.flow.build import build_from_ir
from gen.errors import PlanError
from gen.ir.random_net import random_images, random_network
from sim.network import load_build, simulate_build
from sim.toolchain import have_icarus

# Seeds 0-3 plain chains (the fuzzer, tests/test_fuzz_models*.py, draws converted models too); 9 and 25 draw a dense shortcut into a hidden layer (two projections
# summed by one engine), the first seeds that do and keep the readout at one projection (its
# engine takes one).
SHORTCUT_SEEDS = (9, 25)
SEEDS = tuple(range(4)) + SHORTCUT_SEEDS
IMAGES = 3
SIMULATOR = "icarus" if have_icarus() else "verilator"


def network(seed: int, neuron: str = "if_subtract", shortcuts: tuple[int, ...] = SHORTCUT_SEEDS):
    """Every other one has its weights at the extremes; the `shortcuts` seeds draw shortcuts."""
    rng = np.random.default_rng(5000 + seed)
    return random_network(rng, max_layers=4, extremes=seed % 2 == 0, shortcuts=seed in shortcuts,
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


# msat everywhere (seeds 0-3: chains; 17 and 115: the first seeds whose msat draws put a shortcut
# from the msat encoding layer into a hidden layer, dense and identity, beside a conv or dense
# main projection from another msat layer), and if_subtract and msat drawn per layer
# ("converted", chains: seeds whose draws mix both kinds in the hidden layers, either feeding the
# other, checked below).
MSAT_SHORTCUT_SEEDS = (17, 115)
MSAT_SEEDS = tuple(range(4)) + MSAT_SHORTCUT_SEEDS
MIXED_SEEDS = (0, 1, 2, 14)


def msat_network(seed: int):
    return network(seed, neuron="msat", shortcuts=MSAT_SHORTCUT_SEEDS)


def mixed_network(seed: int):
    return network(seed, neuron="converted", shortcuts=())


def simulate_random(net, seed, tmp_path, images=IMAGES):
    out = tmp_path / "build"
    build_from_ir(net, "pynq-z2", out, images=8, synthesise=False, lint=False)
    result = simulate_build(out, images, simulator=SIMULATOR, seed=seed, backpressure=seed % 2 == 1, quiet=True)
    assert result.ok, (f"{net.name}: " + "; ".join(map(str, result.mismatches[:3]))
                       + (f"; {result.diagnosis.summary()}" if result.diagnosis else ""))
    assert result.report["results"] == images
    return out


@pytest.mark.parametrize("seed", MSAT_SEEDS)
def test_random_msat_network_is_bit_exact(seed, tmp_path):
    out = simulate_random(msat_network(seed), seed, tmp_path)
    hidden = [layer for layer in load_build(out).manifest["layers"] if layer["kind"] != "readout"]
    assert {layer["neuron"] for layer in hidden} == {"msat"}


@pytest.mark.parametrize("seed", MIXED_SEEDS)
def test_random_mixed_converted_network_is_bit_exact(seed, tmp_path):
    simulate_random(mixed_network(seed), seed, tmp_path)


def test_an_msat_network_at_t128_is_bit_exact(tmp_path):
    """T = 128, the IR's cap (docs/msat.md §2): the step counters and the ladder's t are sized from T."""
    net = random_network(np.random.default_rng(5004), max_layers=3, timesteps=128, neuron="msat", name="msat_t128")
    assert net.timesteps == 128
    simulate_random(net, 1, tmp_path, images=1)


def test_the_diagnosis_reads_the_ladder_index_of_msat_events(tmp_path):
    """The probes of an msat network see (address, m): with no fault every layer's spikes and
    rungs equal the golden model's; one event's m planted wrong is named at its layer, step and
    neuron, with both rungs."""
    from sim.diagnose import diagnose
    from sim.network import load_images, run_simulator

    out = tmp_path / "build"
    build_from_ir(msat_network(2), "pynq-z2", out, images=8, synthesise=False, lint=False)
    build_ = load_build(out)
    images, _, _ = load_images(build_.net, 1)
    raw = run_simulator(build_, images, probe=True, simulator=SIMULATOR, seed=3, quiet=True)
    gold = golden.run(build_.net, images, record=True)
    clean = diagnose(build_, gold, raw, image=0)
    assert clean.first is None and clean.logits is None, clean.summary()
    assert all(c["differing"] == 0 and c["events"] == c["golden_events"] for c in clean.layers.values())
    layer = build_.net.layers[0]
    neuron_bits = (int(np.prod(layer.shape)) - 1).bit_length()
    events = raw.probes[layer.name]
    assert len(events) and layer.tables.ladder_steps >= 1
    step, word, _ = (int(v) for v in events[0])
    neuron, rung = word & ((1 << neuron_bits) - 1), word >> neuron_bits
    wrong = 1 if rung == 0 else 0
    events[0, 1] = neuron | wrong << neuron_bits       # the same spike at another rung
    found = diagnose(build_, gold, raw, image=0).first
    assert (found.layer, found.step, found.neuron) == (layer.name, step, neuron)
    assert (found.hardware, found.golden) == (f"spike at rung {wrong}", f"spike at rung {rung}")


def test_a_dense_engine_refuses_msat_events(tmp_path):
    """The dense engines read ternary maps: an msat source's (address, m) events are refused,
    naming the layer and its source, not converted into wrong maps."""
    net = msat_network(0)
    readout = net.readout
    source = readout.projections[0].source
    with pytest.raises(PlanError, match=rf"layer '{readout.name}': the \w+ engine does not read the \(address, m\) "
                                        rf"events of msat layer\(s\) '{source}'"):
        build_from_ir(net, "pynq-z2", tmp_path / "build", images=8, synthesise=False, lint=False,
                      engines={readout.name: "dense"})


def test_the_msat_networks_take_every_rung_and_both_starts():
    """The msat networks above are worth simulating: their spikes take every ladder index of
    their layer (m = 0 … M), half start is on in some and off in others, a layer of several
    projections reads an msat source; the mixed ones mix both converted kinds."""
    nets = [msat_network(seed) for seed in MSAT_SEEDS]
    rungs_taken = 0
    for net in nets:
        result = golden.run(net, random_images(np.random.default_rng(0), net.input_shape, IMAGES), record=True)
        for layer in net.layers[:-1]:
            fired = result.spikes[layer.name] != 0
            rungs = set(np.unique(result.ladders[layer.name][fired]).tolist())
            rungs_taken += rungs == set(range(layer.tables.ladder_steps + 1))
    assert rungs_taken >= 3, f"only {rungs_taken} layers sent every rung"
    hidden = [layer for net in nets for layer in net.layers[:-1]]
    assert {layer.tables.half_start for layer in hidden} == {True, False}
    several = [layer for net in nets for layer in net.layers if len(layer.projections) > 1]
    assert {type(p.op).__name__ for layer in several for p in layer.projections[1:]} == {"Dense", "Identity"}
    mixed = [[layer.neuron for layer in mixed_network(seed).layers[:-1]] for seed in MIXED_SEEDS]
    assert all(set(kinds) == {"if_subtract", "msat"} for kinds in mixed)
    feeds = {pair for kinds in mixed for pair in zip(kinds, kinds[1:])}
    assert {("msat", "if_subtract"), ("if_subtract", "msat")} <= feeds
