"""StreamFork: parameter checks and the cocotb testbench (every beat to every output, in
order, under independent random back-pressure)."""
import pytest
from amaranth.sim import Simulator

from hw.event import event_layout
from hw.fork import StreamFork
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def run_fork(addr_width, outputs, depth, beats, simulator="verilator", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    config = {"addr_width": addr_width, "outputs": outputs, "depth": depth}
    fork = StreamFork(event_layout(addr_width), outputs, depth)
    return run_component(fork, "stream_fork", "sim.tb.fork", dict(config, beats=beats), config,
                         simulator, seed, testcase="fork_passes_every_beat_to_every_output")


@pytest.mark.parametrize("addr_width,outputs,depth", [(6, 3, 2), (9, 2, 4)])
def test_fork_verilator(addr_width, outputs, depth):
    assert run_fork(addr_width, outputs, depth, 4_000).passed == ("fork_passes_every_beat_to_every_output",)


def test_fork_of_one_output_is_a_buffer():
    assert run_fork(3, 1, 2, 1_000).passed == ("fork_passes_every_beat_to_every_output",)


def test_fork_has_no_combinational_path_from_a_consumer_to_the_producer():
    """The producer's ready is a register: toggling every consumer's ready within one cycle
    leaves it unchanged (a plain broadcast fork would AND the consumers' readies into it)."""
    fork = StreamFork(event_layout(4), 2)
    seen = []

    async def bench(ctx):
        for ready in (0, 1, 0, 1):
            ctx.set(fork.out0.ready, ready)
            ctx.set(fork.out1.ready, ready)
            seen.append(ctx.get(fork.w.ready))
    sim = Simulator(fork)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [1, 1, 1, 1]


@pytest.mark.parametrize("kwargs,message", [
    ({"outputs": 0}, "outputs must be an integer >= 1, not 0"),
    ({"outputs": 2, "depth": 1}, "depth must be an integer >= 2, not 1"),
])
def test_fork_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StreamFork(event_layout(4), **kwargs)
