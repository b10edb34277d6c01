"""Whole random networks with dense, event-driven and mixed engine choices, bit-exact.

The same generator steps as `gen build --engine ...` (gen.flow.build.build_from_ir with `engines`):
the top puts hw.dense_convert's converters where an event layer feeds a dense one and back,
packs the pixels 8 per beat for a dense encoding layer, and counts each dense layer's spikes
in its EVENTS_i register. `sim.network.simulate_build` compares every logit, class and event
counter with gen.ir.golden. Tiny networks on Icarus, to stay in the CI budget.
"""
from pathlib import Path

import numpy as np
import pytest

from gen.boards import get_board
from gen.flow.build import build_from_ir
from gen.errors import PlanError
from gen.plan import candidate_families, make_plan
from gen.ir.random_net import random_network
from sim.network import simulate_build
from sim.toolchain import have_icarus

SIMULATOR = "icarus" if have_icarus() else "verilator"
IMAGES = 3


def chain(seed: int):
    rng = np.random.default_rng(5000 + seed)
    return random_network(rng, max_layers=4, shortcuts=False, neuron="binary" if seed % 3 == 0 else "ternary",
                          name=f"dense{seed}")


def dense_capable(net) -> list[str]:
    """The layers the dense family takes (conv spiking layers, 8-pixel-aligned encodings,
    every readout), by the planner's own candidate check."""
    return [name for name, families in candidate_families(net, None).items() if "dense" in families]


def networks(choice: str, count: int):
    """The first `count` seeds whose network gives `choice` something to do: every dense-capable
    layer dense ("dense", including the encoding layer), or alternate layers ("mixed": an event
    layer between dense ones, so both converters appear)."""
    found = []
    for seed in range(400):
        net = chain(seed)
        capable = dense_capable(net)
        if choice == "dense" and net.layers[0].name in capable and len(capable) >= 2:
            found.append((seed, net, {name: "dense" for name in capable}))
        elif choice == "mixed" and len(net.layers) >= 3 and len(capable) >= 2:
            engines = {layer.name: ("dense" if i % 2 == 1 and layer.name in capable else "event")
                       for i, layer in enumerate(net.layers)}
            if "dense" in engines.values() and "event" in list(engines.values())[1:]:
                found.append((seed, net, engines))
        if found and found[-1][0] == seed and not plans(net, found[-1][2]):
            found.pop()             # an engine refuses it at every lane count (too few neuron words, ...)
        if len(found) == count:
            return found
    raise AssertionError(f"no {count} random networks for {choice!r}")


def plans(net, engines) -> bool:
    try:
        make_plan(net, get_board("pynq-z2"), families=engines)
    except PlanError:
        return False
    return True


CASES = [(choice, k) for choice in ("dense", "mixed") for k in range(2)]


@pytest.mark.parametrize("choice, k", CASES)
def test_dense_and_mixed_engine_choices_are_bit_exact(choice, k, tmp_path):
    seed, net, engines = networks(choice, 2)[k]
    out = tmp_path / "build"
    build_from_ir(net, "pynq-z2", out, images=8, synthesise=False, lint=False, engines=engines)
    import json
    manifest = json.loads((out / "manifest.json").read_text())
    assert {l["name"]: l["engine_family"] for l in manifest["layers"]} == \
        {layer.name: engines.get(layer.name, "event") for layer in net.layers}
    assert "set by --engine" in (out / "report.md").read_text()
    result = simulate_build(out, IMAGES, simulator=SIMULATOR, seed=seed, backpressure=k == 1, quiet=True)
    assert result.ok, (f"{net.name} {engines}: " + "; ".join(map(str, result.mismatches[:3]))
                       + (f"; {result.diagnosis.summary()}" if result.diagnosis else ""))
    assert result.report["results"] == IMAGES


def test_the_cases_cover_both_converters_and_the_dense_encoding():
    dense = networks("dense", 2)
    mixed = networks("mixed", 2)
    assert all(engines[net.layers[0].name] == "dense" for _, net, engines in dense)
    # mixed: a dense layer fed by an event layer, and an event layer fed by a dense one
    pairs = {(engines[a.name], engines[b.name]) for _, net, engines in mixed for a, b in zip(net.layers, net.layers[1:])}
    assert ("event", "dense") in pairs and ("dense", "event") in pairs
