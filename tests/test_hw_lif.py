"""LIFUnit: parameter checks and the cocotb testbench (ternary and binary, several P, k, T)."""
import pytest

from hw.lif import LIFUnit
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


# The one test case each run selects; the runner already raises on a failure.
TB_TESTS = ("lif_matches_spec",)


def run_lif(lanes, steps, leak_shift, kind, current_width=10, bias_width=6, theta_width=8,
            updates=10_000, simulator="verilator", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    membrane_width = max(theta_width, current_width, bias_width) + leak_shift * (steps - 1) + 2
    config = dict(lanes=lanes, steps=steps, leak_shift=leak_shift, kind=kind, current_width=current_width,
                  bias_width=bias_width, membrane_width=membrane_width, theta_width=theta_width)
    unit = LIFUnit(**config, tag_width=8)
    return run_component(unit, "lif_unit", "sim.tb.lif", dict(config, updates=updates), config,
                         simulator, seed, testcase="lif_matches_spec")


@pytest.mark.parametrize("lanes,steps,leak_shift,kind", [(4, 4, 2, "ternary"), (1, 2, 1, "binary")])
def test_lif_verilator(lanes, steps, leak_shift, kind):
    assert run_lif(lanes, steps, leak_shift, kind).passed == TB_TESTS


def test_lif_icarus():
    assert run_lif(2, 3, 2, "ternary", updates=2_000, simulator="icarus").passed == TB_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("lanes,steps,leak_shift,kind,widths", [
    (8, 8, 2, "ternary", (20, 12, 16)), (3, 1, 0, "ternary", (4, 2, 3)),
    (2, 5, 3, "binary", (16, 9, 12)), (16, 2, 2, "ternary", (2, 1, 2)),
])
def test_lif_sweep(lanes, steps, leak_shift, kind, widths):
    cw, bw, thw = widths
    assert run_lif(lanes, steps, leak_shift, kind, cw, bw, thw, updates=20_000).passed == TB_TESTS


@pytest.mark.parametrize("kwargs,message", [
    ({"lanes": 0}, "lanes must be an integer >= 1, not 0"),
    ({"steps": 0}, "steps must be an integer >= 1, not 0"),
    ({"leak_shift": -1}, "leak_shift must be an integer >= 0, not -1"),
    ({"kind": "plain"}, "kind must be one of ternary, binary, if_subtract, not 'plain'"),
    ({"current_width": 1}, "current_width must be an integer >= 2, not 1"),
    ({"membrane_width": 1.5}, "membrane_width must be an integer >= 2, not 1.5"),
])
def test_lif_rejects_bad_parameters(kwargs, message):
    base = dict(lanes=2, steps=4, leak_shift=2, kind="ternary", current_width=8, bias_width=4,
                membrane_width=16, theta_width=8)
    with pytest.raises(ValueError, match=message):
        LIFUnit(**{**base, **kwargs})
