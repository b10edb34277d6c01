"""Testbench for hw.axi.AxisResultOut: Result beats in, int32 words on AXI4-Stream out.

Scoreboard: each frame must be the K logits as little-endian int32, then the class as
int32, zero padded to whole 64-bit beats, TLAST on the last beat. Random idle on the
result side, random back-pressure from the AXI sink.
Params: logit_width, classes, images.
"""
import random
import struct

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamSink

from sim.runner import tb_params
from sim.tb.streams import random_pause


def pack_result(logits, cls, width, classes):
    """The Result payload bits: logits[i] at [i*width, (i+1)*width), then the class."""
    word = 0
    for i, v in enumerate(logits):
        word |= (v & ((1 << width) - 1)) << (i * width)
    return word | (cls << (classes * width))


def expected_frame(logits, cls):
    words = list(logits) + [cls]
    if len(words) % 2:
        words.append(0)
    return struct.pack(f"<{len(words)}i", *words)


@cocotb.test()
async def results_are_packed_as_int32_words(dut):
    params = tb_params()
    rng = random.Random(cocotb.RANDOM_SEED)
    width, classes = params["logit_width"], params["classes"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst, reset_active_level=True)
    sink.set_pause_generator(random_pause(rng, 0.4))
    dut.rst.value = 1
    dut.result__valid.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0

    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    sent = []
    for n in range(params["images"]):
        extremes = [lo, hi, 0, -1][n % 4]
        logits = [rng.choice([rng.randint(lo, hi), extremes]) for _ in range(classes)]
        cls = rng.randrange(classes)
        sent.append((logits, cls))
    for logits, cls in sent:
        while rng.random() < 0.3:       # random idle between results
            await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.result__payload.value = pack_result(logits, cls, width, classes)
        dut.result__valid.value = 1
        while True:
            await RisingEdge(dut.clk)
            if int(dut.result__ready.value):
                break
        await FallingEdge(dut.clk)
        dut.result__valid.value = 0
    for logits, cls in sent:
        frame = await sink.recv()
        assert bytes(frame.tdata) == expected_frame(logits, cls), (logits, cls, bytes(frame.tdata).hex())
        assert all(k == 0xFF for k in (frame.tkeep or [0xFF])) or frame.tkeep is None
    assert sink.empty()
