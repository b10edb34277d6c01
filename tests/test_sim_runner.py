"""The cocotb runner works on both simulators with an Amaranth component."""
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sim.runner import SimulationFailed, check_simulator, cocotb_tests_in, run_testbench, write_verilog
from sim.toolchain import available_simulators


class Adder(wiring.Component):
    """Registered a + b: the smallest design with a clock, reset and data."""
    a: In(8)
    b: In(8)
    y: Out(9)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.a + self.b)
        return m


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_runner_passes_a_correct_design_and_fails_a_wrong_expectation(tmp_path, simulator):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    source = write_verilog(Adder(), "adder", tmp_path / "adder.v")
    result = run_testbench([source], "adder", "sim.tb.adder", tmp_path / "build",
                           params={"n": 200, "offset": 0}, simulator=simulator, seed=1)
    assert result.passed == cocotb_tests_in("sim.tb.adder") == ("adder_matches_python",) and result.seed == 1
    with pytest.raises(SimulationFailed, match="1 of 1 cocotb tests failed"):
        run_testbench([source], "adder", "sim.tb.adder", tmp_path / "build",
                      params={"n": 20, "offset": 1}, simulator=simulator, seed=1)


def test_unknown_simulator_is_refused():
    with pytest.raises(ValueError, match="simulator must be one of verilator, icarus, not 'vcs'"):
        check_simulator("vcs")
