"""The MSAT neuron unit (hw/msat_neuron.py, docs/msat.md §3b): its cocotb bench against
gen.golden.msat_step (every ladder index taken, cell boundaries and rungs hit exactly) and
its parameter checks. Not in an engine yet: tests/test_sim_msat_network.py checks the plan
refuses msat layers."""
import numpy as np
import pytest

from hw.msat_neuron import MSATUnit
from sim.tb.harness import run_component
from sim.toolchain import available_simulators

TB_TESTS = ("msat_matches_golden",)


def tables(ladder_steps, lut_half, seed):
    """Random tables as gen.random_net draws them (docs/msat.md §4)."""
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
