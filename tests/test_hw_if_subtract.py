"""The if_subtract LIF unit (docs/msat.md §3a): its cocotb bench against gen.ir.golden, its
parameter checks, and the LIF sweep that stores its balance counter beside R."""
import pytest

from hw.event import bits_for
from hw.lif import LIFUnit
from hw.sweep import LIFSweep
from sim.tb.harness import run_component
from sim.toolchain import available_simulators

TB_TESTS = ("if_subtract_matches_golden",)


def run_if_subtract(lanes, steps, correction, current_width=10, bias_width=6, theta_width=8,
                    updates=6_000, simulator="verilator", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    membrane_width = max(theta_width, current_width, bias_width) + 2
    config = dict(lanes=lanes, steps=steps, current_width=current_width, bias_width=bias_width,
                  membrane_width=membrane_width, theta_width=theta_width, counter_width=bits_for(steps + 1),
                  correction=correction)
    unit = LIFUnit(leak_shift=0, kind="if_subtract", **config, tag_width=8)
    return run_component(unit, "if_subtract_unit", "sim.tb.if_subtract", dict(config, updates=updates),
                         dict(config, kind="if_subtract"), simulator, seed, testcase=TB_TESTS[0])


@pytest.mark.parametrize("lanes,steps,correction", [(4, 8, True), (1, 3, False)])
def test_if_subtract_unit_icarus(lanes, steps, correction):
    assert run_if_subtract(lanes, steps, correction, simulator="icarus").passed == TB_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("lanes,steps,correction,widths", [
    (8, 32, True, (20, 12, 16)), (2, 1, True, (4, 2, 3)), (16, 5, False, (12, 4, 10)),
])
def test_if_subtract_unit_verilator(lanes, steps, correction, widths):
    cw, bw, thw = widths
    assert run_if_subtract(lanes, steps, correction, cw, bw, thw, updates=20_000).passed == TB_TESTS


@pytest.mark.parametrize("kwargs,message", [
    ({"leak_shift": 1}, "leak_shift must be 0 for an if_subtract neuron, not 1"),
    ({"counter_width": 0}, "counter_width must be an integer >= 1, not 0"),
    ({"kind": "ternary"}, "counter_width and correction are for if_subtract neurons, not 'ternary'"),
    ({"kind": "msat"}, "kind must be one of ternary, binary, if_subtract, not 'msat'"),
])
def test_if_subtract_unit_rejects_bad_parameters(kwargs, message):
    base = dict(lanes=2, steps=4, leak_shift=0, kind="if_subtract", current_width=8, bias_width=4,
                membrane_width=16, theta_width=8, counter_width=3, correction=True)
    with pytest.raises(ValueError, match=message):
        LIFUnit(**{**base, **kwargs})


SWEEP = dict(out_channels=2, positions=3, bias=[0, 1], theta_pos=[4, 5], theta_neg=[-4, -5], leak_shift=0,
             steps=8, lanes=1, current_width=8, membrane_width=6)


def test_sweep_stores_r_wide_enough_for_the_subtract_reset_and_a_counter_to_t():
    sweep = LIFSweep(**SWEEP, kind="if_subtract", amplitude=[8, 100], correction=True)
    # R = U − A leaves the U range of the bounds: one bit above max(membrane, A).
    assert sweep.stored_width == 9             # A = 100 needs 8 signed bits, membrane 6: one above
    assert sweep.counter_width == 4            # 0 … T = 8
    ternary = LIFSweep(**SWEEP, kind="ternary")
    assert (ternary.stored_width, ternary.counter_width) == (SWEEP["membrane_width"], 0)


@pytest.mark.parametrize("kwargs,message", [
    ({"kind": "if_subtract"}, r"amplitude must have shape \(2,\), not \(\)"),
    ({"kind": "if_subtract", "amplitude": [4, 0]}, "amplitude must be positive in every channel"),
    ({"kind": "ternary", "amplitude": [4, 4]}, "amplitude and correction are for if_subtract neurons"),
    ({"kind": "if_subtract", "amplitude": [4, 4], "theta_neg": [4, -5]}, "theta_neg must be below theta_pos"),
])
def test_sweep_rejects_bad_if_subtract_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LIFSweep(**{**SWEEP, **kwargs})
