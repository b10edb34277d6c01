"""Testbench for the runner's own test: a registered adder against Python's +."""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from sim.runner import tb_params


@cocotb.test()
async def adder_matches_python(dut):
    params = tb_params()
    rng = random.Random(cocotb.RANDOM_SEED)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    for _ in range(params["n"]):
        a, b = rng.randrange(256), rng.randrange(256)
        await FallingEdge(dut.clk)  # drive away from the sampling edge
        dut.a.value, dut.b.value = a, b
        await RisingEdge(dut.clk)
        await ReadOnly()
        assert int(dut.y.value) == a + b + params["offset"], (a, b, int(dut.y.value))
