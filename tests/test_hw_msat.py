"""The MSAT engine pieces (docs/msat.md §3b): the neuron unit (hw/msat_neuron.py) against
gen.ir.golden.msat_step (every ladder index taken, cell boundaries and rungs hit exactly), the
spiking layer with msat neurons fed by an msat source ((address, m) events in and out, W << (M − m)
accumulated, half start), and their parameter checks. Whole networks: tests/test_sim_msat_network.py."""
import numpy as np
import pytest

from hw.geometry import DenseGeometry
from hw.layer import SpikingLayer
from hw.msat_neuron import MSATTables, MSATUnit
from sim.tb.harness import run_component
from sim.toolchain import available_simulators

TB_TESTS = ("msat_matches_golden",)


def tables(ladder_steps, lut_half, seed):
    """Random tables as gen.ir.random_net draws them (docs/msat.md §4)."""
    rng = np.random.default_rng(seed)
    z = -np.sort(-rng.choice(np.arange(-300, 300), size=ladder_steps, replace=False))
    return dict(ladder_steps=ladder_steps, lut_half=lut_half, ladder_z=[int(v) for v in z],
                lut_d=[int(v) for v in rng.integers(-300, 301, 2 * lut_half)],
                lut_x=[int(v) for v in rng.integers(-300, 301, 2 * lut_half)])


def run_msat(lanes, steps, ladder_steps, lut_half, updates=4_000, simulator="icarus", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    config = dict(lanes=lanes, steps=steps, **tables(ladder_steps, lut_half, lanes + steps), current_width=12,
                  bias_width=6, membrane_width=14, sum_width=20, theta_width=12, shift_width=4)
    unit = MSATUnit(**config, tag_width=8)
    return run_component(unit, "msat_unit", "sim.tb.msat", dict(config, updates=updates), config, simulator,
                         seed, testcase=TB_TESTS[0])


@pytest.mark.parametrize("lanes,steps,ladder_steps,lut_half", [(2, 8, 3, 4), (1, 64, 1, 1)])
def test_msat_unit_icarus(lanes, steps, ladder_steps, lut_half):
    assert run_msat(lanes, steps, ladder_steps, lut_half).passed == TB_TESTS


@pytest.mark.parametrize("kwargs,message", [
    ({"ladder_steps": 0}, "ladder_steps must be an integer >= 1, not 0"),
    ({"lut_d": [1, 2]}, "lut_d must have 4 entries, not 2"),
    ({"ladder_z": [1, 5]}, r"ladder_z must be strictly decreasing, not \[1, 5\]"),
])
def test_msat_unit_rejects_bad_parameters(kwargs, message):
    base = dict(lanes=1, steps=4, ladder_steps=2, lut_half=2, lut_d=[0, 1, 2, 3], lut_x=[0, 1, 2, 3],
                ladder_z=[5, 1], current_width=8, bias_width=4, membrane_width=10, sum_width=14, theta_width=8)
    with pytest.raises(ValueError, match=message):
        MSATUnit(**{**base, **kwargs})


# ---- the spiking layer with msat neurons ((address, m) events in and out) ----------------------

def run_msat_layer(geometry, lanes, steps, ladder_steps, in_ladder_steps, half_start, lut_half=3,
                   transactions=3_000, simulator="icarus", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    from sim.tb.msat_layer import build
    config = {"geometry": geometry, "lanes": lanes, "steps": steps, "ladder_steps": ladder_steps,
              "in_ladder_steps": in_ladder_steps, "half_start": half_start, "lut_half": lut_half,
              "weight_width": 6, "weight_style": "random", "weight_seed": 7}
    _, _, layer = build(config)
    return run_component(layer, "msat_layer", "sim.tb.msat_layer", dict(config, transactions=transactions),
                         config, simulator, seed, testcase="msat_layer_matches_golden")


CONV = {"kind": "conv", "in_channels": 2, "in_height": 5, "in_width": 5, "out_channels": 4,
        "kernel": 3, "stride": 1, "padding": 1}
DENSE = {"kind": "dense", "in_features": 12, "out_features": 6}


@pytest.mark.parametrize("geometry,lanes,steps,ladder_steps,in_ladder_steps,half_start", [
    (CONV, 2, 5, 3, 2, True),
    (DENSE, 3, 8, 4, 4, False),
])
def test_msat_layer_icarus(geometry, lanes, steps, ladder_steps, in_ladder_steps, half_start):
    result = run_msat_layer(geometry, lanes, steps, ladder_steps, in_ladder_steps, half_start)
    assert result.passed == ("msat_layer_matches_golden",)


def msat_layer_args(**change):
    tables_ = MSATTables(ladder_steps=2, lut_half=1, lut_d=[0, 1], lut_x=[0, 1], ladder_z=[5, 1],
                         d_shift=[0] * 4, x_shift=[0] * 4)
    args = dict(geometry=DenseGeometry(6, 4), weights=np.zeros((4, 6), dtype=np.int64),
                bias=np.zeros(4, dtype=np.int64), theta_pos=np.full(4, 8), theta_neg=None, leak_shift=0, steps=2,
                kind="msat", lanes=2, weight_width=4, current_width=8, membrane_width=10, msat=tables_)
    return {**args, **change}


def test_msat_layer_sends_the_ladder_index_in_its_events():
    """An (address, m) event is an event of address + m bits: what the top carries as such."""
    layer = SpikingLayer(**msat_layer_args(ladder_steps=4))
    assert layer.event_width == layer.out_addr_width + 2                      # m in 0..2
    assert len(layer.events.payload.as_value()) == layer.event_width + 2      # neg, eos
    assert len(layer.events_in.payload.as_value()) == layer.in_addr_width + 3 + 2   # m in 0..4


@pytest.mark.parametrize("change,message", [
    ({"msat": None}, "msat must be an hw.msat_neuron.MSATTables for an msat neuron, not None"),
    ({"theta_pos": np.full(4, 6)}, r"theta_pos must be a positive multiple of 2\^ladder_steps = 4"),
    ({"kind": "ternary", "theta_neg": np.full(4, -3)}, "msat tables are for msat neurons, not 'ternary'"),
    ({"ladder_steps": -1}, "ladder_steps must be an integer in \\[0, 16\\], not -1"),
])
def test_msat_layer_rejects_bad_parameters(change, message):
    args = msat_layer_args(**change)
    with pytest.raises(ValueError, match=message):
        SpikingLayer(args.pop("geometry"), args.pop("weights"), args.pop("bias"), args.pop("theta_pos"),
                     args.pop("theta_neg"), **args)


def test_msat_tables_reject_bad_shifts():
    with pytest.raises(ValueError, match="d_shift and x_shift must have one entry per channel, not 2 and 3"):
        MSATTables(ladder_steps=1, lut_half=1, lut_d=[0, 1], lut_x=[0, 1], ladder_z=[0],
                   d_shift=[0, 1], x_shift=[0, 1, 2])
