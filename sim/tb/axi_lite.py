"""Testbench for hw.axi.AxiLiteRegisters: reads and writes through cocotbext-axi's AxiLiteMaster.

The dut is a wrapper (tests/test_axi_lite.py) that loops each register's ports back to
something checkable: `ro` registers read a constant (their offset xor 0xA5A50000), `w1c`
registers hold flags that the wrapper sets to all ones after reset and that clear pulses
knock down, `w1p` pulses are OR-ed into a sticky `pulses_seen` register.
Params: registers [(name, offset, access)], addr_width.
"""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from sim.runner import tb_params
from sim.tb.streams import random_pause


def ro_value(offset):
    return offset ^ 0xA5A50000


@cocotb.test()
async def registers_read_and_write_as_mapped(dut):
    params = tb_params()
    rng = random.Random(cocotb.RANDOM_SEED)
    regs = [tuple(r) for r in params["registers"]]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst, reset_active_level=True)
    for channel in (master.write_if.aw_channel, master.write_if.w_channel, master.write_if.b_channel,
                    master.read_if.ar_channel, master.read_if.r_channel):
        channel.set_pause_generator(random_pause(rng, 0.3))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    by_access = {}
    for name, offset, access in regs:
        by_access.setdefault(access, []).append(offset)
    for offset in by_access.get("ro", []):
        assert await master.read_dword(offset) == ro_value(offset), f"ro register at {offset:#x}"
        await master.write_dword(offset, 0xFFFFFFFF)      # writes to ro are ignored
        assert await master.read_dword(offset) == ro_value(offset)
    for offset in by_access.get("rw", []):
        for _ in range(4):
            value = rng.getrandbits(32)
            await master.write_dword(offset, value)
            assert await master.read_dword(offset) == value
        await master.write(offset + 1, b"\x5a")            # byte strobes are honoured
        assert (await master.read_dword(offset)) >> 8 & 0xFF == 0x5A
    for offset in by_access.get("w1c", []):
        assert await master.read_dword(offset) == 0xFFFFFFFF
        await master.write_dword(offset, 0x00000005)
        assert await master.read_dword(offset) == 0xFFFFFFFA
    for offset in by_access.get("w1p", []):
        assert await master.read_dword(offset) == 0           # pulse registers read 0
        await master.write_dword(offset, 0x00000003)
        assert int(dut.pulses_seen.value) & 3 == 3
    # Unmapped words read 0 and do not disturb anything.
    mapped = {o for _, o, _ in regs}
    hole = next(o for o in range(0, 1 << params["addr_width"], 4) if o not in mapped)
    await master.write_dword(hole, 0x12345678)
    assert await master.read_dword(hole) == 0
    for offset in by_access.get("ro", []):
        assert await master.read_dword(offset) == ro_value(offset)
