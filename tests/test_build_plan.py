"""gen.plan: lanes (given, checked, automatic), widths, memories, queues, cycles."""
import json

import numpy as np
import pytest

from gen.boards import get_board
from gen.frontend import compile_dict
from gen.golden import run
from gen.plan import (PlanError, check_lanes, load_lanes_config, make_plan, parse_lanes_arg, queue_depth,
                      valid_lanes, Traffic)
from gen.random_net import random_checkpoint, random_images
from gen.regmap import FIRST_EVENT_COUNTER, register_map

BOARD = get_board("pynq-z2")


@pytest.fixture(scope="module")
def net():
    return compile_dict(random_checkpoint(1, residual=False, normalization=False)).network


@pytest.fixture(scope="module")
def images(net):
    return random_images(np.random.default_rng(0), net.input_shape, 16)


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
    plan = make_plan(net, BOARD, {names[1]: 1}, images)
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
    from gen.bounds import network_bounds

    plan = make_plan(net, BOARD, None, images)
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
