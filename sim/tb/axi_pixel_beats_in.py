"""Testbench for hw.axi.AxisPixelBeatsIn: AXI4-Stream beats in, whole beats of 8 pixels out.

Scoreboard: the expected beats of every frame from the framing rules (a short frame is
completed with zero beats, a long one cut at the image's size), with random idle on the AXI
side and random back-pressure (long stalls now and then) on the pixel side. With
`full_rate`, neither: an image of B beats must pass in B cycles back to back.
Params: pixels (per image, whole beats), frames (list of byte counts, one per frame sent),
full_rate.
"""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

from sim.runner import tb_params
from sim.tb.axi_pixel_in import expected_pixels
from sim.tb.streams import random_pause

PIXELS_PER_BEAT = 8
BEAT_BITS = 8 * PIXELS_PER_BEAT


def expected_beats(frame: bytes, pixels: int) -> list[tuple[int, int]]:
    """(64-bit word with pixel i in bits [8i, 8i+8), last) for each beat of one image."""
    values = expected_pixels(frame, pixels)
    beats = len(values) // PIXELS_PER_BEAT
    return [(int.from_bytes(bytes(values[PIXELS_PER_BEAT * b:PIXELS_PER_BEAT * (b + 1)]), "little"),
             int(b == beats - 1)) for b in range(beats)]


class BeatsInTB:
    def __init__(self, dut, rng, idle):
        self.dut, self.rng = dut, rng
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                                      reset_active_level=True)
        if idle:
            self.source.set_pause_generator(random_pause(rng, idle))
        self.received = []        # (word, last, cycle)
        self.pulses = {"image_in": 0, "short_image": 0, "long_image": 0}
        self.cycle = 0

    async def reset(self):
        self.dut.rst.value = 1
        self.dut.pixels__ready.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0

    async def monitor(self, stall):
        """Back-pressure (`stall` share of cycles, a long stall every 200 cycles when not 0);
        records every transferred beat and every pulse."""
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            stalled = stall and (self.cycle % 200 < 30 or self.rng.random() < stall)
            dut.pixels__ready.value = int(not stalled)
            await ReadOnly()
            if int(dut.pixels__valid.value) and int(dut.pixels__ready.value):
                word = int(dut.pixels__payload.value)
                self.received.append((word & ((1 << BEAT_BITS) - 1), (word >> BEAT_BITS) & 1, self.cycle))
            for name in self.pulses:
                self.pulses[name] += int(getattr(dut, name).value)
            self.cycle += 1
            await RisingEdge(dut.clk)


@cocotb.test()
async def beats_match_the_framing_rules(dut):
    params = tb_params()
    rng = random.Random(cocotb.RANDOM_SEED)
    pixels, sizes, full_rate = params["pixels"], params["frames"], params.get("full_rate", False)
    tb = BeatsInTB(dut, rng, idle=0.0 if full_rate else 0.3)
    await tb.reset()
    cocotb.start_soon(tb.monitor(stall=0.0 if full_rate else 0.3))
    frames = [bytes(rng.randrange(256) for _ in range(size)) for size in sizes]
    for frame in frames:
        await tb.source.send(AxiStreamFrame(frame))
    expected = [beat for frame in frames for beat in expected_beats(frame, pixels)]
    for _ in range(100 * len(expected) + 1000):
        await RisingEdge(dut.clk)
        if len(tb.received) >= len(expected) and tb.source.empty() and not tb.source.active:
            break
    await ClockCycles(dut.clk, 20)
    got = [(word, last) for word, last, _ in tb.received]
    first_bad = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    assert got == expected, f"first mismatch at beat {first_bad} of {len(expected)}"
    beats = pixels // PIXELS_PER_BEAT
    short = sum(1 for s in sizes if -(-s // PIXELS_PER_BEAT) < beats)
    long = sum(1 for s in sizes if -(-s // PIXELS_PER_BEAT) > beats)
    assert tb.pulses == {"image_in": len(sizes), "short_image": short, "long_image": long}, tb.pulses
    assert int(dut.in_image.value) == 0
    if full_rate:
        # Whole images back to back: one beat per cycle from the first to the last.
        cycles = tb.received[-1][2] - tb.received[0][2] + 1
        assert cycles == len(expected), f"{len(expected)} beats took {cycles} cycles"
