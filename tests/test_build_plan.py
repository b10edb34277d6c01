"""gen.plan: lanes (given, checked, automatic), widths, memories, queues, cycles, and the
resource estimate against yosys (benchmarks/plan_calibration.py)."""
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import re

import pytest

from gen.boards import Capacity, get_board
from gen.boards.xc7 import XC7
from gen.frontend import compile_checkpoint, compile_dict
from gen.ir.golden import fanout, run
from gen.ir import Dense
from gen.plan import (MAX_AUTO_LANES, RESOURCE_BUDGET, Memory, PlanError, check_lanes, load_lanes_config,
                      make_plan, memory_mapping, parse_lanes_arg, queue_depth, valid_lanes, Traffic)
from gen.ir.random_net import random_checkpoint, random_images
from gen.backend.regmap import FIRST_EVENT_COUNTER, register_map

BOARD = get_board("pynq-z2")
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mnist_ternary_t2.pt"
CALIBRATION = REPO / "benchmarks" / "plan_calibration.json"
KEYS = ("luts", "ffs", "bram36", "dsps")
# The plan the earlier greedy choice made for the example (conv1=1, conv2=16, conv3=8, fc=1).
OLD_AUTO_CYCLES = 188_123


@pytest.fixture(scope="module")
def net():
    return compile_dict(random_checkpoint(1, residual=False, normalization=False)).network


@pytest.fixture(scope="module")
def images(net):
    return random_images(np.random.default_rng(0), net.input_shape, 16)


def event(net) -> dict:
    """Every layer on the event-driven family: the tests of its cost model and lane choice."""
    return {layer.name: "event" for layer in net.layers}


def test_valid_lanes_are_the_divisors():
    assert valid_lanes(12) == [1, 2, 3, 4, 6, 12]


def test_lanes_argument_parses_and_rejects_garbage():
    assert parse_lanes_arg("conv2=16, fc1=2") == {"conv2": 16, "fc1": 2}
    with pytest.raises(PlanError, match="--lanes must be layer=P\\[,layer=P...\\], not 'conv2'"):
        parse_lanes_arg("conv2")


def test_invalid_lanes_list_the_valid_values_and_are_never_snapped(net):
    name = net.layers[0].name
    channels = net.layers[0].channels
    bad = channels + 1
    with pytest.raises(PlanError, match=f"lanes of layer '{name}' must be one of {valid_lanes(channels)}".replace("[", "\\[").replace("]", "\\]")):
        check_lanes(net, {name: bad})
    with pytest.raises(PlanError, match="lanes names a layer that does not exist: 'nope'; layers are"):
        check_lanes(net, {"nope": 1})


def test_config_files_in_json_and_toml(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"lanes": {"conv1": 2}}))
    (tmp_path / "a.toml").write_text("[lanes]\nconv1 = 2\n")
    assert load_lanes_config(tmp_path / "a.json") == load_lanes_config(tmp_path / "a.toml") == {"conv1": 2}
    (tmp_path / "b.toml").write_text("lanes = 3\n")
    with pytest.raises(PlanError, match="must hold a table 'lanes' of layer = integer"):
        load_lanes_config(tmp_path / "b.toml")


def test_given_lanes_are_kept_and_cycles_follow_the_cost_model(net, images):
    names = [l.name for l in net.layers]
    plan = make_plan(net, BOARD, {names[1]: 1}, images, families=event(net))
    lp = plan.layer(names[1])
    assert lp.lanes == 1 and lp.lanes_source == "user"
    # The cost model from the golden model's own counts: SOPs / P + T sweeps of (O/P)·positions + eos.
    golden = run(net, images, record=True)
    sops = golden.sops[names[1]].sum(axis=1).mean()
    positions = int(np.prod(net.layer(names[1]).shape[1:]))
    expected = sops / 1 + net.timesteps * (net.layer(names[1]).channels * positions + 1)
    assert lp.cycles == pytest.approx(expected)
    assert plan.bottleneck.cycles == max(l.cycles for l in plan.layers)


def test_automatic_lanes_never_slow_the_pipeline_down(net, images):
    one = make_plan(net, BOARD, {l.name: 1 for l in net.layers}, images)
    auto = make_plan(net, BOARD, None, images)
    assert auto.cycles_per_image <= one.cycles_per_image
    assert all(lp.lanes in lp.valid_lanes for lp in auto.layers)
    assert auto.estimate["luts"] <= BOARD.capacity.luts


def test_widths_and_memories_follow_bounds_and_lanes(net, images):
    from gen.ir.bounds import network_bounds

    plan = make_plan(net, BOARD, None, images, families=event(net))
    bounds = network_bounds(net)
    for lp in plan.layers:
        assert lp.widths["accumulator_bits"] == bounds[lp.name].accumulator_bits
        weights = next(m for m in lp.memories if m.name == "weights")
        assert weights.depth * lp.lanes == lp.geometry.out_channels * lp.geometry.fan_in


def test_queue_depth_holds_the_peak_with_headroom_but_never_more_than_a_step():
    assert queue_depth(Traffic(10, 40, 0, True), 1000) == 64         # 61 needed -> 64
    assert queue_depth(Traffic(10, 40, 0, True), 20) == 32           # a step sends <= 21 beats
    assert queue_depth(Traffic(0, 0, 0, True), 1000) == 16           # the floor


def test_worst_case_traffic_without_images(net):
    plan = make_plan(net, BOARD, None, None)
    assert not plan.layers[0].traffic.measured and plan.notes
    assert plan.layers[1].traffic.peak_events_step == net.layers[1].size


def test_register_map_offsets_are_unique_and_counters_follow_layers():
    regmap = register_map(["conv1", "conv2", "fc"])
    offsets = [r.offset for r in regmap.registers]
    assert len(set(offsets)) == len(offsets)
    assert [regmap.offset(reg) for _, reg in regmap.event_counters] == \
        [FIRST_EVENT_COUNTER, FIRST_EVENT_COUNTER + 4, FIRST_EVENT_COUNTER + 8]
    assert regmap.to_json()["registers"][0] == {"name": "MAGIC", "offset": 0, "access": "ro",
                                                "description": "constant 0x5445524e ('TERN')", "fields": {}}
    with pytest.raises(ValueError, match="layer names must be unique"):
        register_map(["a", "a"])


# --------------------------------------------------------------------------- the shipped example


@pytest.fixture(scope="module")
def example():
    """The shipped example's IR and the held-out images `gen build` measures traffic on."""
    from gen.flow.build import DEFAULT_IMAGES, plan_images

    if not EXAMPLE.is_file():
        pytest.fail(f"{EXAMPLE} is missing: it is committed with the repository")
    net = compile_checkpoint(EXAMPLE).network
    return net, plan_images(net, DEFAULT_IMAGES)[0]


def fits_budget(estimate, capacity=BOARD.capacity) -> bool:
    return all(estimate[k] <= RESOURCE_BUDGET[k] * getattr(capacity, k) for k in KEYS)


def test_auto_plan_of_the_example_is_the_fastest_that_fits(example):
    net, images = example
    plan = make_plan(net, BOARD, None, images, families=event(net))
    assert fits_budget(plan.estimate)
    assert plan.cycles_per_image < OLD_AUTO_CYCLES / 2
    # Brute force over every lane combination up to the cap (a layer's plan does not depend on
    # the others' lanes): none that fits the budget is faster.
    counts = sorted({p for layer in net.layers for p in valid_lanes(layer.channels) if p <= MAX_AUTO_LANES})
    at = {p: make_plan(net, BOARD, {l.name: p if l.channels % p == 0 else 1 for l in net.layers}, images, families=event(net))
          for p in counts}
    options = [[at[p].layer(layer.name) for p in valid_lanes(layer.channels) if p <= MAX_AUTO_LANES]
               for layer in net.layers]
    top = {k: plan.estimate[k] - sum(lp.estimate[k] for lp in plan.layers) for k in KEYS}
    best = min(max(lp.cycles for lp in combo) for combo in itertools.product(*options)
               if fits_budget({k: top[k] + sum(lp.estimate[k] for lp in combo) for k in KEYS}))
    assert plan.cycles_per_image == pytest.approx(max(best, plan.input_cycles))


def test_auto_plan_gives_each_layer_the_fewest_lanes_that_keep_up(example):
    net, images = example
    plan = make_plan(net, BOARD, None, images, families=event(net))
    for lp in plan.layers:
        assert lp.lanes_source == "auto" and lp.cycles <= plan.cycles_per_image
        fewer = [p for p in lp.valid_lanes if p < lp.lanes]
        if fewer:   # one step down would make this layer the slowest
            slower = make_plan(net, BOARD, {lp.name: fewer[-1]}, images, families=event(net)).layer(lp.name)
            assert slower.cycles > plan.cycles_per_image


def test_user_lanes_are_kept_and_the_others_only_keep_up_with_them(example):
    net, images = example
    plan = make_plan(net, BOARD, {"conv2": 4, "fc": 10}, images, families=event(net))
    conv2 = plan.layer("conv2")
    assert (conv2.lanes, conv2.lanes_source, plan.layer("fc").lanes) == (4, "user", 10)
    assert plan.bottleneck.name == "conv2"       # nothing else is raised past the rate it sets
    for lp in plan.layers:
        if lp.lanes_source == "auto" and lp.lanes > 1:
            fewer = [p for p in lp.valid_lanes if p < lp.lanes][-1]
            assert make_plan(net, BOARD, {"conv2": 4, "fc": 10, lp.name: fewer}, images, families=event(net)).layer(lp.name).cycles \
                > conv2.cycles
    # A user may go past the automatic cap.
    assert make_plan(net, BOARD, {"conv2": 64}, images, families=event(net)).layer("conv2").lanes == 64


def test_a_board_too_small_for_anything_gets_one_lane_everywhere(example):
    net, images = example
    tiny = dataclasses.replace(BOARD, capacity=Capacity(luts=100, ffs=100, bram36=1, dsps=1))
    plan = make_plan(net, tiny, None, images, families=event(net))
    assert [lp.lanes for lp in plan.layers] == [1] * len(net.layers)
    assert plan.estimate["bram36"] > tiny.capacity.bram36      # gen build refuses it with these numbers


# --------------------------------------------------------------------------- estimate vs yosys


@pytest.mark.parametrize("mem, primitive, replicas, bram36", [
    # (yosys 0.70 synth_xilinx of the example's engines: "mapping memory ... via ...")
    (Memory("currents", 25088, 18, True, transparent=True), "RAMB18E1 TDP", 25, 12.5),   # conv1, P=1
    (Memory("membranes", 25088, 20, True), "RAMB18E1 TDP", 35, 17.5),                    # 4096 x 4 aspect
    (Memory("weights", 288, 8, True, rom=True), "logic", 0, 0.0),                        # a small ROM
    (Memory("spikes", 16, 17, False), "RAM32M", 3, 0.0),
    (Memory("queue", 4096, 17, False), "RAMB36E1 TDP", 2, 2.0),
    (Memory("currents", 49, 1024, True, transparent=True), "RAM64M", 342, 0.0),          # conv3, P=64
])
def test_memory_mapping_follows_yosys(mem, primitive, replicas, bram36):
    m = memory_mapping(mem, XC7)
    assert (m.primitive.split()[0] if m.replicas else m.primitive, m.replicas, m.bram36) == \
        (primitive.split()[0], replicas, bram36)


def test_the_model_knows_the_hardware_constants():
    from hw.readout import ReadoutLayer
    from hw.geometry import DenseGeometry
    from hw.sweep import SPIKE_FIFO_DEPTH
    from gen.plan import SPIKE_FIFO_DEPTH as PLANNED, readout_sum_width

    assert PLANNED == SPIKE_FIFO_DEPTH
    r = ReadoutLayer(DenseGeometry(in_features=4, out_features=2), np.ones((2, 4), int), [0, 0], lanes=1,
                     weight_width=8, steps=3, current_width=11, logit_width=14)
    assert r.sum_width == readout_sum_width({"logit_bits": 14, "accumulator_bits": 11}, 3)


def calibration_rows():
    return json.loads(CALIBRATION.read_text())["rows"] if CALIBRATION.is_file() else []


def test_estimate_is_above_the_recorded_synthesis_and_close(example):
    """benchmarks/plan_calibration.json: each engine of the example synthesised alone by yosys."""
    net, images = example
    rows = calibration_rows()
    assert len(rows) >= 20, "run python -m benchmarks.plan_calibration"
    for row in rows:
        lp = make_plan(net, BOARD, {row["layer"]: row["lanes"]}, images, families=event(net)).layer(row["layer"])
        est, got = lp.estimate, row["synthesis"]
        assert all(est[k] >= got[k] for k in KEYS), (row["layer"], row["lanes"], est, got)
        assert est["bram36"] == got["bram36"], (row["layer"], row["lanes"])
        assert est["luts"] <= 1.5 * got["luts"] and est["ffs"] <= 1.5 * got["ffs"], (row["layer"], row["lanes"])


@pytest.mark.slow
@pytest.mark.parametrize("layer, lanes", [("conv1", 4), ("conv2", 8), ("fc", 5)])
def test_estimate_is_above_synthesis_of_the_engines_as_they_are_now(example, tmp_path, layer, lanes):
    """The recorded calibration can go stale when hw/ changes: this synthesises today's RTLIL
    (gen.backend.synth's cache is keyed on it, so a changed engine is synthesised again)."""
    from gen.backend.emit import build_engine, module_name, write_module
    from gen.backend.synth import count_cells, synthesise_module

    net, images = example
    plan = make_plan(net, BOARD, {layer: lanes}, images, families=event(net))
    i = [lp.name for lp in plan.layers].index(layer)
    module = module_name(layer)
    engine = build_engine(net, plan.layers[i], plan.layers[i - 1].queue_depth if i else 0)
    write_module(engine, module, tmp_path / f"{module}.v", tmp_path / f"{module}.il")
    cells, _ = synthesise_module(module, [tmp_path / f"{module}.il"], [], tmp_path / "synth", tmp_path)
    got, est = count_cells(cells), plan.layers[i].estimate
    assert all(est[k] >= got[k] for k in KEYS) and est["bram36"] == got["bram36"], (est, got)


# --------------------------------------------------------------------------- residual layers: edges and costs


@pytest.fixture(scope="module")
def residual():
    """Identity, 1×1 stride-1 and stride-2 shortcuts, and a layer reading one source twice."""
    net = compile_dict(random_checkpoint(21, residual=True, pool=False, normalization=False)).network
    return net, random_images(np.random.default_rng(0), net.input_shape, 16)


def test_every_projection_is_one_edge_into_its_own_input_stream(residual):
    net, images = residual
    plan = make_plan(net, BOARD, None, images, families=event(net))
    assert len(plan.edges) == sum(len(layer.projections) for layer in net.layers)
    for layer in net.layers:
        lp = plan.layer(layer.name)
        assert [(e.source, e.target, e.projection) for e in lp.inputs] == \
            [(p.source, layer.name, i) for i, p in enumerate(layer.projections)]
        if layer.kind == "encoding":
            assert [(e.stream, e.queue_depth) for e in lp.inputs] == [("pixels", 0)]
            continue
        assert [e.stream for e in lp.inputs] == ["events_in"] + [f"events_in{i}" for i in range(1, len(lp.inputs))]
        for e in lp.inputs:   # the queue holds a step's events of the edge's source
            assert e.queue_depth == plan.layer(e.source).queue_depth and e.addr_width == plan.layer(e.source).out_addr_width
    forked = [lp.name for lp in plan.layers if len(plan.consumers(lp.name)) > 1]
    assert forked and all(len(plan.layer(name).inputs) for name in forked)
    data = plan.to_json()
    assert data["edges"] == [e.to_json() for e in plan.edges]
    assert [g["op"] for g in data["layers"][-2]["geometries"]] == [g.op for g in plan.layers[-2].geometries]
    assert "DAG" in data["queue_justification"] and "docs/hardware.md" in data["queue_justification"]


def test_each_projection_is_priced(residual):
    """Weights: a section per projection (identity: one word per channel group); one queue per
    edge; DSPs of each decoder; cycles: conv SOPs/P, identity one per event, the join's T."""
    net, images = residual
    golden = run(net, images, record=True)
    layers = [layer for layer in net.layers if len(layer.projections) > 1]
    assert {type(p.op).__name__ for layer in layers for p in layer.projections} == {"Conv2d", "Identity"}
    lanes = {layer.name: 2 for layer in layers if layer.channels % 2 == 0}
    plan = make_plan(net, BOARD, lanes, images, families=event(net))
    T = net.timesteps
    for layer in layers:
        lp = plan.layer(layer.name)
        weights = next(m for m in lp.memories if m.name == "weights")
        assert weights.depth * lp.lanes == layer.channels * sum(g.fan_in for g in lp.geometries)
        queues = [m for m in lp.memories if m.name.startswith("queue")]
        assert [(m.name, m.depth) for m in queues] == [("queue" if i == 0 else f"queue{i}", e.queue_depth)
                                                       for i, e in enumerate(lp.inputs)]
        assert lp.estimate["dsps"] == sum({"conv2d": 3, "identity": 2}[g.op] for g in lp.geometries)
        accumulate = 0.0
        for p, g in zip(layer.projections, lp.geometries):
            active = np.abs(golden.spikes[p.source]).reshape(len(images), T, -1)
            f = fanout(p.op, p.weight, net.source_shape(p.source), layer.shape).reshape(-1)
            sops, events = (active @ f).sum(axis=1).mean(), active.sum(axis=(1, 2)).mean()
            accumulate += events if g.op == "identity" else sops / lp.lanes
        words = layer.channels // lp.lanes * int(np.prod(layer.shape[1:]))
        sent = golden.events[layer.name].sum(axis=1).mean()
        assert lp.cycles == pytest.approx(accumulate + max(T * words, sent) + T + T)


def test_more_projections_than_the_engine_sums_is_one_plan_error():
    from gen.ir import INPUT, Conv2d, Identity, Layer, Network, Projection

    def lif(name, projections, kind="spiking"):
        return Layer(name, kind, (2, 4, 4), tuple(projections), np.zeros(2, np.int64), neuron="binary",
                     theta_pos=np.full(2, 3))
    conv = Conv2d(3, 1, 1)
    layers = [lif("enc", [Projection(INPUT, conv, np.ones((2, 1, 3, 3), np.int64))], kind="encoding")]
    layers += [lif(name, [Projection("enc", conv, np.ones((2, 2, 3, 3), np.int64))]) for name in ("a", "b", "c")]
    layers.append(lif("sum", [Projection(s, Identity(), np.ones(2, np.int64)) for s in ("a", "b", "c", "enc")]))
    layers.append(Layer("out", "readout", (3,), (Projection("sum", Dense(), np.ones((3, 32), np.int64)),),
                        np.zeros(3, np.int64)))
    net = Network("wide", (1, 4, 4), 2, 8, tuple(layers))
    with pytest.raises(PlanError, match=r"^layer 'sum': the SpikingLayer engine takes at most 3 projection\(s\) "
                                        r"per layer, not 4 from \['a', 'b', 'c', 'enc'\]$"):
        make_plan(net, BOARD)


# --------------------------------------------------------------------------- engine families


def test_engine_argument_parses_and_refuses_in_one_line(example):
    from gen.plan import parse_engines_arg

    net, images = example
    assert parse_engines_arg("conv2=dense, fc=event") == {"conv2": "dense", "fc": "event"}
    with pytest.raises(PlanError, match=r"--engine must be layer=family\[,layer=family...\], not 'conv2'"):
        parse_engines_arg("conv2")
    with pytest.raises(PlanError, match=r"engine families name layers that do not exist: \['nope'\]; layers are conv1"):
        make_plan(net, BOARD, None, images, families={"nope": "dense"})
    with pytest.raises(PlanError, match=r"layer 'conv2': no engine for a spiking layer of family 'stream'; "
                                        r"supported: .*spiking/dense.*spiking/event"):
        make_plan(net, BOARD, None, images, families={"conv2": "stream"})


def test_the_planner_puts_a_layer_that_fires_often_on_the_dense_engine(example):
    """The example fires 30-50 % of its neurons per step: event-driven conv2 cannot come near the
    dense engine's fixed cycles, so the default plan (every family competes) and the cheapest
    plan at a rate target are both dense there, say why, and are faster than the all-event plan
    while fitting the budget."""
    net, images = example
    events_only = make_plan(net, BOARD, None, images, families=event(net))
    fastest_event = min(make_plan(net, BOARD, {"conv2": p}, images, families={"conv2": "event"}).layer("conv2").cycles
                        for p in (16, 32))
    default = make_plan(net, BOARD, None, images)
    targeted = make_plan(net, BOARD, None, images, target_fps=3500)
    for plan in (default, targeted):
        conv2 = plan.layer("conv2")
        assert (conv2.family, conv2.family_source) == ("dense", "auto")
        assert "event needs at least" in conv2.family_reason and "events/image (measured)" in conv2.family_reason
        assert conv2.cycles < fastest_event
        assert plan.cycles_per_image < events_only.cycles_per_image and fits_budget(plan.estimate)
        layer_json = plan.to_json()["layers"][1]
        assert layer_json["family"] == "dense" and layer_json["family_reason"]
    # Without a target the default is the fastest plan that fits, so at least the target's rate.
    assert default.cycles_per_image <= targeted.cycles_per_image
    assert "--target-fps" not in " ".join(default.notes)
    assert default.images_per_second >= 10_000      # issue 14: the shipped example by default
    # --engine keeps the user's family and says so.
    forced = make_plan(net, BOARD, None, images, families={"conv2": "event"}).layer("conv2")
    assert (forced.family, forced.family_source, forced.family_reason) == ("event", "user", "set by --engine")


def test_target_fps_takes_the_cheapest_plan_that_reaches_it_or_names_the_best_rate(example):
    net, images = example
    fast = make_plan(net, BOARD, None, images, target_fps=3500)
    slow = make_plan(net, BOARD, None, images, target_fps=1000)
    assert slow.images_per_second >= 1000 and fast.images_per_second >= 3500
    assert slow.estimate["luts"] < fast.estimate["luts"]
    assert "--target-fps 1000" in " ".join(slow.notes)
    with pytest.raises(PlanError, match=f"--target-fps 1e\\+06 cannot be met on the {BOARD.part} .*the best that "
                                        r"fits is ([\d,]+) images/s") as refused:
        make_plan(net, BOARD, None, images, target_fps=1e6)
    best = int(re.search(r"the best that fits is ([\d,]+) images/s", str(refused.value)).group(1).replace(",", ""))
    assert best >= round(fast.images_per_second)      # the message rounds to whole images/s
    with pytest.raises(PlanError, match="--target-fps must be a positive number"):
        make_plan(net, BOARD, None, images, target_fps=0)


def test_engine_and_target_fps_refusals_from_the_command_line(tmp_path):
    """What users type, from the repository root: one line on stderr, exit 2, nothing built."""
    import subprocess
    import sys

    def gen_build(*options):
        return subprocess.run([sys.executable, "-m", "gen", "build", "examples/mnist_ternary_t2.pt", "--no-synth",
                               "--out", str(tmp_path / "b"), *options], capture_output=True, text=True, cwd=REPO)

    res = gen_build("--engine", "conv2")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "--engine must be layer=family" in res.stderr
    res = gen_build("--engine", "conv2=stream")
    last = res.stderr.strip().splitlines()[-1]      # the steps' progress lines come first
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "family 'stream'" in last and "spiking/dense" in last and "spiking/event" in last
    res = gen_build("--target-fps", "1000000")
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "cannot be met" in last and "the best that fits is" in last and "images/s" in last
    assert not (tmp_path / "b").exists()
