"""Testbench for the whole accelerator top (hw.top.TernTop) as the build emits it.

Everything the TB knows about the design comes from the build's manifest.json: register
offsets and bit fields, pixel and result packing, the model ID. The scoreboard is the
golden model (gen.ir.golden), run by the pytest side and passed in as params:

    manifest: the manifest dict
    frames:   [{"bytes": [...], "logits": [...], "cls": int}]   what to send, what must come back
              (short/long frames carry the golden result of the image the block actually
              sees: zero-padded or cut)
    errors:   expected final ERRORS flags before clearing, by field name
    events:   expected EVENTS_<i> counter values (spikes per layer over all frames)

Random idle on the pixel stream, random back-pressure on the result stream and the
register bus; the seed is logged by sim.runner.
"""
import random
import struct

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, with_timeout
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink,
                           AxiStreamSource)

from formats.regmap import MAGIC
from sim.runner import tb_params
from sim.tb.streams import random_pause


class Registers:
    """Named register access through the manifest's map: no offsets in this file."""

    def __init__(self, master, regmap):
        self.master = master
        self.regs = {r["name"]: r for r in regmap["registers"]}

    async def read(self, name):
        return await self.master.read_dword(self.regs[name]["offset"])

    async def write(self, name, value):
        await self.master.write_dword(self.regs[name]["offset"], value)

    def bit(self, name, field):
        return 1 << self.regs[name]["fields"][field]


def expected_bytes(logits, cls, output):
    words = list(logits) + [cls]
    words += [0] * (2 * output["beats_per_image"] - len(words))
    return struct.pack(f"<{len(words)}i", *words)


class TopTB:
    def __init__(self, dut, params, rng):
        self.dut, self.params, self.rng = dut, params, rng
        manifest = params["manifest"]
        cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                                      reset_active_level=False)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.aclk, dut.aresetn,
                               reset_active_level=False)
        self.source.set_pause_generator(random_pause(rng, 0.2))
        self.sink.set_pause_generator(random_pause(rng, 0.3))
        master.read_if.r_channel.set_pause_generator(random_pause(rng, 0.3))
        self.regs = Registers(master, manifest["registers"])
        self.manifest = manifest

    async def reset(self):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 5)
        self.dut.aresetn.value = 1
        await ClockCycles(self.dut.aclk, 5)


@cocotb.test()
async def top_matches_the_golden_model(dut):
    params = tb_params()
    rng = random.Random(cocotb.RANDOM_SEED)
    tb = TopTB(dut, params, rng)
    manifest = tb.manifest
    await tb.reset()
    regs = tb.regs

    # Identity and constants, as the host driver checks them.
    assert await regs.read("MAGIC") == MAGIC
    assert await regs.read("MODEL_ID") == manifest["model"]["model_id"]
    assert await regs.read("REGMAP_VERSION") == manifest["registers"]["version"]
    assert await regs.read("TIMESTEPS") == manifest["timesteps"]
    assert await regs.read("NUM_CLASSES") == manifest["classes"]
    assert await regs.read("PIXELS_PER_IMAGE") == manifest["input"]["pixels_per_image"]
    assert await regs.read("NUM_LAYERS") == len(manifest["layers"])
    await regs.write("SCRATCH", 0xC0FFEE11)
    assert await regs.read("SCRATCH") == 0xC0FFEE11

    # All frames back to back, results collected concurrently with back-pressure.
    frames = params["frames"]
    for frame in frames:
        await tb.source.send(AxiStreamFrame(bytes(frame["bytes"])))
    for i, frame in enumerate(frames):
        got = await with_timeout(tb.sink.recv(), params.get("timeout_us", 2000), "us")
        want = expected_bytes(frame["logits"], frame["cls"], manifest["output"])
        assert bytes(got.tdata) == want, f"frame {i}: got {bytes(got.tdata).hex()}, want {want.hex()}"
    await ClockCycles(dut.aclk, 20)

    assert await regs.read("IMAGES_IN") == len(frames)
    assert await regs.read("IMAGES_OUT") == len(frames)
    assert await regs.read("STATUS") & regs.bit("STATUS", "BUSY") == 0
    assert await regs.read("BUSY_CYCLES_LO") > 0
    for counter, want in zip(manifest["registers"]["event_counters"], params["events"]):
        assert await regs.read(counter["register"]) == want, counter

    errors = await regs.read("ERRORS")
    want_errors = sum(regs.bit("ERRORS", name) for name, on in params["errors"].items() if on)
    assert errors == want_errors, (errors, want_errors)
    await regs.write("ERRORS", errors)                    # write 1 to clear
    assert await regs.read("ERRORS") == 0
    await regs.write("CONTROL", regs.bit("CONTROL", "CLEAR_COUNTERS"))
    assert await regs.read("IMAGES_IN") == 0 and await regs.read("IMAGES_OUT") == 0
