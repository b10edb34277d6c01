"""Testbench for hw.axi.AxisPixelIn: AXI4-Stream beats in, one pixel per beat out.

Scoreboard: the expected pixel stream of every frame, computed from the framing rules
(a short frame is completed with zeros, a long one cut at the image's size), with random
idle on the AXI side and random back-pressure on the pixel side.
Params: pixels (per image), frames (list of byte counts, one per frame sent).
"""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

from sim.runner import tb_params
from sim.tb.streams import random_pause


def expected_pixels(frame: bytes, pixels: int) -> list[int]:
    """What the block must hand on for one frame."""
    data = list(frame[:pixels])
    return data + [0] * (pixels - len(data))


class PixelInTB:
    def __init__(self, dut, rng):
        self.dut, self.rng = dut, rng
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                                      reset_active_level=True)
        self.source.set_pause_generator(random_pause(rng, 0.3))
        self.received = []        # (value, last)
        self.pulses = {"image_in": 0, "short_image": 0, "long_image": 0}

    async def reset(self):
        self.dut.rst.value = 1
        self.dut.pixels__ready.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0

    async def monitor(self, stall):
        """Random back-pressure; records every transferred pixel and every pulse."""
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            dut.pixels__ready.value = int(self.rng.random() >= stall)
            await ReadOnly()
            if int(dut.pixels__valid.value) and int(dut.pixels__ready.value):
                word = int(dut.pixels__payload.value)
                self.received.append((word & 0xFF, (word >> 8) & 1))
            for name in self.pulses:
                self.pulses[name] += int(getattr(dut, name).value)
            await RisingEdge(dut.clk)


@cocotb.test()
async def pixels_match_the_framing_rules(dut):
    params = tb_params()
    rng = random.Random(cocotb.RANDOM_SEED)
    pixels, sizes = params["pixels"], params["frames"]
    tb = PixelInTB(dut, rng)
    await tb.reset()
    cocotb.start_soon(tb.monitor(stall=0.3))
    frames = [bytes(rng.randrange(256) for _ in range(size)) for size in sizes]
    for frame in frames:
        await tb.source.send(AxiStreamFrame(frame))
    expected = []
    for frame in frames:
        values = expected_pixels(frame, pixels)
        expected += [(v, int(i == pixels - 1)) for i, v in enumerate(values)]
    for _ in range(100 * len(expected) + 1000):
        await RisingEdge(dut.clk)
        if len(tb.received) >= len(expected) and tb.source.empty() and not tb.source.active:
            break
    await ClockCycles(dut.clk, 20)
    assert tb.received == expected, f"first mismatch at pixel {next((i for i, (a, b) in enumerate(zip(tb.received, expected)) if a != b), min(len(tb.received), len(expected)))}"
    beats = -(-pixels // 8)
    short = sum(1 for s in sizes if -(-s // 8) < beats)
    long = sum(1 for s in sizes if -(-s // 8) > beats)
    assert tb.pulses == {"image_in": len(sizes), "short_image": short, "long_image": long}, tb.pulses
    assert int(dut.in_image.value) == 0
