"""The plan prices the converters hw.top puts where a dense engine and an event engine meet
(gen.engines.converters): an EventsToMap (and its skid buffer) on each edge from an event
engine into a dense one, a MapToEvents on each edge from a dense engine into an event one.
The total grows by exactly their estimates; a plan of one family has none; the build report
shows their share beside the top's; the estimate stays above yosys (slow)."""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from gen.backend.manifest import make_report, report_markdown
from gen.boards import get_board
from gen.boards.xc7 import XC7
from gen.engines.converters import EVENTS_TO_MAP, MAP_TO_EVENTS, converter_estimate, map_memory
from gen.engines.memory import Memory, memory_mapping
from gen.ir import INPUT, Conv2d, Dense, Layer, Network, Projection
from gen.plan import make_plan, top_estimate

BOARD = get_board("pynq-z2")
REPO = Path(__file__).resolve().parents[1]
KEYS = ("luts", "ffs", "bram36", "dsps")


def network(shortcut: bool = False) -> Network:
    """input (1, 8, 8) -> enc conv (4, 8, 8) -> mid conv stride 2 (6, 4, 4) -> out readout (3);
    with `shortcut`, mid also reads enc through a second conv (two edges leave enc)."""
    rng = np.random.default_rng(0)

    def lif(name, shape, projections, kind="spiking"):
        c = shape[0]
        return Layer(name, kind, shape, tuple(projections), rng.integers(-2, 3, c), neuron="ternary",
                     theta_pos=np.full(c, 6), theta_neg=np.full(c, -6))

    enc = lif("enc", (4, 8, 8), [Projection(INPUT, Conv2d(3, 1, 1), rng.integers(-7, 8, (4, 1, 3, 3)))], "encoding")
    into_mid = [Projection("enc", Conv2d(3, 2, 1), rng.integers(-7, 8, (6, 4, 3, 3)))]
    if shortcut:
        into_mid.append(Projection("enc", Conv2d(1, 2, 0), rng.integers(-7, 8, (6, 4, 1, 1))))
    mid = lif("mid", (6, 4, 4), into_mid)
    out = Layer("out", "readout", (3,), (Projection("mid", Dense(), rng.integers(-7, 8, (3, 96))),),
                rng.integers(-2, 3, 3))
    return Network("mixed" if shortcut else "chain", (1, 8, 8), 2, 4, (enc, mid, out))


def layers_and_top(plan) -> dict:
    """What the total was before the converters: every layer's estimate and the top's."""
    parts = [lp.estimate for lp in plan.layers] + [top_estimate(len(plan.layers), XC7)]
    return {key: sum(p[key] for p in parts) for key in KEYS}


def added(a: dict, b: dict) -> dict:
    return {key: a[key] + b[key] for key in KEYS}


def same(a: dict, b: dict) -> bool:
    return all(a[key] == pytest.approx(b[key]) for key in KEYS)


MIXED = {"enc": "dense", "mid": "event", "out": "dense"}


def test_a_mixed_plan_grows_by_exactly_its_converters():
    """enc (dense) -> mid (event): a MapToEvents of enc's 4x8x8 map; mid (event) -> out (dense):
    an EventsToMap of mid's 6x4x4 map."""
    net = network()
    plan = make_plan(net, BOARD, families=MIXED)
    assert [(c.source, c.target, c.converter, c.shape) for c in plan.converters] == [
        ("enc", "mid", MAP_TO_EVENTS, (4, 8, 8)), ("mid", "out", EVENTS_TO_MAP, (6, 4, 4))]
    to_events = converter_estimate(MAP_TO_EVENTS, (4, 8, 8), net.timesteps, XC7)
    to_map = converter_estimate(EVENTS_TO_MAP, (6, 4, 4), net.timesteps, XC7)
    assert all(to_events[k] > 0 for k in ("luts", "ffs")) and all(to_map[k] > 0 for k in ("luts", "ffs"))
    assert same(plan.estimate, added(layers_and_top(plan), added(to_events, to_map)))
    assert same(plan.estimate_shares["converters"], added(to_events, to_map))
    assert plan.estimate_shares["top"] == top_estimate(len(plan.layers), XC7)


def test_one_converter_per_edge_where_a_dense_layer_feeds_an_event_layer_twice():
    net = network(shortcut=True)
    plan = make_plan(net, BOARD, families=MIXED)
    assert [(c.source, c.target, c.projection, c.converter) for c in plan.converters] == [
        ("enc", "mid", 0, MAP_TO_EVENTS), ("enc", "mid", 1, MAP_TO_EVENTS), ("mid", "out", 0, EVENTS_TO_MAP)]
    each = converter_estimate(MAP_TO_EVENTS, (4, 8, 8), net.timesteps, XC7)
    to_map = converter_estimate(EVENTS_TO_MAP, (6, 4, 4), net.timesteps, XC7)
    assert same(plan.estimate, added(layers_and_top(plan), added(added(each, each), to_map)))


@pytest.mark.parametrize("family", ["dense", "event"])
def test_a_plan_of_one_family_has_no_converters(family):
    net = network()
    plan = make_plan(net, BOARD, families={layer.name: family for layer in net.layers})
    assert plan.converters == ()
    assert same(plan.estimate, layers_and_top(plan))
    assert plan.estimate_shares["converters"] == {"luts": 0, "ffs": 0, "bram36": 0.0, "dsps": 0}


def test_the_plan_json_and_the_report_show_the_converters_beside_the_top():
    net = network()
    plan = make_plan(net, BOARD, families=MIXED)
    data = plan.to_json()
    assert [c["converter"] for c in data["converters"]] == [MAP_TO_EVENTS, EVENTS_TO_MAP]
    assert data["estimate_shares"]["converters"] == plan.estimate_shares["converters"]
    report = make_report(net=net, board=BOARD, plan=plan, utilisation=None, lint={}, steps=[], model_id=1)
    assert report["estimate_shares"] == plan.estimate_shares
    text = report_markdown(report)
    share = plan.estimate_shares["converters"]
    line = next(line for line in text.splitlines() if line.startswith("Estimated by the plan"))
    assert f"the top {plan.estimate_shares['top']['luts']:,} LUT" in line
    assert f"converters {share['luts']:,} LUT, {share['ffs']:,} FF" in line
    assert "enc → mid (MapToEvents 4×8×8)" in line and "mid → out (EventsToMap 6×4×4)" in line
    one_family = make_plan(net, BOARD, families={layer.name: "event" for layer in net.layers})
    text = report_markdown(make_report(net=net, board=BOARD, plan=one_family, utilisation=None, lint={},
                                       steps=[], model_id=1))
    assert "Estimated by the plan" in text and "converters" not in text


def test_the_map_memory_takes_a_write_enable_byte_per_channel():
    """One write enable per channel's 2 bits: a block RAM gives each its own 9-bit byte (yosys
    packs 4 channels per 36-bit word), a LUT RAM its own primitive; one enable for the whole
    word (write_group = width) prices as a memory without groups."""
    grouped = memory_mapping(map_memory(16, 28, 28), XC7)
    assert grouped.primitive.startswith("RAMB36") and grouped.replicas == -(-16 // 4)
    lut_ram = memory_mapping(map_memory(64, 7, 7), XC7)
    assert lut_ram.primitive == "RAM64M" and lut_ram.replicas == 64
    for mem in (Memory("m", 784, 32, False), Memory("q", 4096, 14, False), Memory("s", 49, 128, False)):
        assert memory_mapping(dataclasses.replace(mem, write_group=mem.width), XC7) == memory_mapping(mem, XC7)
        assert memory_mapping(dataclasses.replace(mem, write_group=2), XC7).cost >= memory_mapping(mem, XC7).cost


@pytest.mark.slow
def test_the_estimate_is_at_or_above_yosys_at_the_residual_examples_boundaries(tmp_path):
    """The residual example's converters (conv4b -> fc: EventsToMap 64x7x7, conv2 -> conv3a/b:
    MapToEvents 32x14x14) synthesised alone from RTLIL (as gen build) and Verilog (as
    benchmarks/hw_blocks.py) by benchmarks/converters.py: the estimate is at or above both."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import converters as bench
    rows = bench.measure((64, 7, 7), 2, ("rtlil", "verilog"), tmp_path, blocks=("EventsToMap", "SkidBuffer"))
    rows += bench.measure((32, 14, 14), 2, ("rtlil", "verilog"), tmp_path, blocks=("MapToEvents",))
    for row in rows:
        for route, synth in row["synthesis"].items():
            for key in ("luts", "ffs", "bram36"):
                assert row["estimate"][key] >= synth[key], (row["block"], route, key)
        assert row["above"]
