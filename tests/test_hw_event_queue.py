"""EventQueue: parameter checks and the cocotb testbench on Verilator and Icarus."""
import pytest

from hw.event_queue import EventQueue
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


# The one test case each run selects; the runner already raises on a failure.
TB_TESTS = ("queue_passes_every_event_once_in_order",)


def run_queue(addr_width, depth, binary, events, simulator="verilator", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    config = {"addr_width": addr_width, "depth": depth, "binary": binary}
    return run_component(EventQueue(addr_width, depth, binary), "event_queue", "sim.tb.event_queue",
                         dict(config, events=events), config, simulator, seed,
                         testcase="queue_passes_every_event_once_in_order")


@pytest.mark.parametrize("addr_width,depth,binary", [(10, 16, False), (4, 2, True)])
def test_queue_verilator(addr_width, depth, binary):
    assert run_queue(addr_width, depth, binary, 10_000).passed == TB_TESTS


def test_queue_icarus():
    assert run_queue(7, 5, False, 2_000, simulator="icarus").passed == TB_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("addr_width,depth,binary", [(1, 3, False), (16, 64, True), (12, 512, False)])
def test_queue_sweep(addr_width, depth, binary):
    assert run_queue(addr_width, depth, binary, 20_000).passed == TB_TESTS


@pytest.mark.parametrize("kwargs,message", [
    ({"addr_width": 0, "depth": 4}, "addr_width must be a positive integer, not 0"),
    ({"addr_width": 4, "depth": 1}, "depth must be an integer >= 2, not 1"),
    ({"addr_width": 4, "depth": 4, "binary": 1}, "binary must be True or False, not 1"),
])
def test_queue_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EventQueue(**kwargs)
