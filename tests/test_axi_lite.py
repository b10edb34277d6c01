"""hw.axi.AxiLiteRegisters over the real register map, through cocotbext-axi's AXI4-Lite master."""
import pytest
from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.backend.regmap import ADDR_WIDTH, register_map, registers_for_hw
from hw.axi import AxiLiteRegisters
from sim.runner import cocotb_tests_in, run_testbench, write_verilog
from sim.tb.harness import kick_comb_blocks_at_time_zero


# Every cocotb test of the bench must have run and passed (the runner raises on a failure).
TB_TESTS = cocotb_tests_in("sim.tb.axi_lite")


class LoopbackRegisters(wiring.Component):
    """AxiLiteRegisters with its register ports looped back as sim/tb/axi_lite.py expects."""

    def __init__(self, registers, addr_width):
        self.regs = AxiLiteRegisters(registers, addr_width)
        members = {name: member for name, member in self.regs.signature.members.items()
                   if name.startswith("s_axi_")}
        members["pulses_seen"] = Out(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = self.regs
        for name in self.signature.members:
            if name.startswith("s_axi_"):
                outer, inner = getattr(self, name), getattr(regs, name)
                if regs.signature.members[name].flow == wiring.In:
                    m.d.comb += inner.eq(outer)
                else:
                    m.d.comb += outer.eq(inner)
        for name, offset, access in regs.registers:
            if access == "ro":
                m.d.comb += getattr(regs, name).eq(Const(offset ^ 0xA5A50000, 32))
            elif access == "w1c":
                flags = Signal(32, init=0xFFFFFFFF, name=f"{name}_flags")
                m.d.sync += flags.eq(flags & ~getattr(regs, f"{name}_clear"))
                m.d.comb += getattr(regs, name).eq(flags)
            elif access == "w1p":
                m.d.sync += self.pulses_seen.eq(self.pulses_seen | getattr(regs, name))
        return m


def test_register_map_reads_and_writes(tmp_path):
    registers = registers_for_hw(register_map(["conv1", "conv2", "fc"]))
    dut = LoopbackRegisters(registers, ADDR_WIDTH)
    source = write_verilog(dut, "axi_lite_loopback", tmp_path / "axi_lite_loopback.v")
    source.write_text(kick_comb_blocks_at_time_zero(source.read_text()))    # Icarus: see harness
    result = run_testbench([source], "axi_lite_loopback", "sim.tb.axi_lite", tmp_path / "build",
                           params={"registers": [list(r) for r in registers], "addr_width": ADDR_WIDTH},
                           simulator="icarus")
    assert result.passed == TB_TESTS


@pytest.mark.parametrize("registers, message", [
    ([("A", 0, "rx")], "access must be one of ro, rw, w1p, w1c, not 'rx'"),
    ([("A", 2, "ro")], "offset must be word aligned and below 0x1000, not 2"),
    ([("A", 0, "ro"), ("B", 0, "ro")], "registers must have unique names and offsets"),
    (["A"], "registers must hold \\(name, offset, access\\) triples, not 'A'"),
])
def test_bad_register_lists_are_refused(registers, message):
    with pytest.raises(ValueError, match=message):
        AxiLiteRegisters(registers)
