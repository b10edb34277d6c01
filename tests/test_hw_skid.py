"""hw.skid.SkidBuffer: every beat once and in order under random idle and back-pressure,
full rate when nothing stalls, and no combinational path through it in either direction."""
import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from hw.skid import SkidBuffer
from sim.tb.harness import run_component
from sim.toolchain import available_simulators

TESTCASE = "skid_passes_every_beat_in_order"


def run_skid(width, beats, simulator="verilator", **params):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    config = {"width": width}
    return run_component(SkidBuffer(unsigned(width)), "skid_buffer", "sim.tb.skid",
                         dict(config, beats=beats, **params), config, simulator, testcase=TESTCASE)


def test_skid_under_back_pressure():
    assert run_skid(65, 3_000).passed == (TESTCASE,)


def test_skid_at_full_rate():
    assert run_skid(9, 500, full_rate=True).passed == (TESTCASE,)


def test_skid_has_no_combinational_path():
    """Toggling the consumer's ready, or the producer's valid and payload, within one cycle
    changes none of the buffer's outputs: they are all registers."""
    skid = SkidBuffer(unsigned(8))
    seen = []

    async def bench(ctx):
        # Fill both entries: the output stalled, two beats offered.
        ctx.set(skid.r.ready, 0)
        for value in (0x11, 0x22):
            ctx.set(skid.w.valid, 1)
            ctx.set(skid.w.payload, value)
            await ctx.tick()
        for ready, valid, payload in ((0, 0, 0), (1, 1, 0x33), (0, 1, 0x44), (1, 0, 0x55)):
            ctx.set(skid.r.ready, ready)
            ctx.set(skid.w.valid, valid)
            ctx.set(skid.w.payload, payload)
            seen.append((ctx.get(skid.w.ready), ctx.get(skid.r.valid), ctx.get(skid.r.payload)))
    sim = Simulator(skid)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(0, 1, 0x11)] * 4
