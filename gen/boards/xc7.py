"""The Xilinx 7-series device description (Zynq-7000, Artix-7): yosys's memory primitives for
synth_xilinx -family xc7, and each engine's logic model fitted to synth_xilinx of that engine.

Memory primitives: techlibs/xilinx/brams_xc4v.txt (HAS_SIZE_36, HAS_CASCADE, HAS_MIXWIDTH_SDP)
and lutrams_xc5v.txt, as memory_libmap prices them (gen.engines.memory). Logic fits: rounded
up so that the estimate stays above synthesis; where each was fitted is said beside it.
"""
from __future__ import annotations

from gen.boards.device import Device, RamPrimitive, frozen_logic

RAM_PRIMITIVES = (
    RamPrimitive("RAMB18E1 TDP", 0.5, 0, 129, 0, 14, (1, 2, 4, 9, 18), 9, True),
    RamPrimitive("RAMB36E1 TDP", 1.0, 0, 257, 0, 15, (1, 2, 4, 9, 18, 36), 9, True),
    RamPrimitive("RAMB36E1 cascade", 2.0, 0, 513, 0, 16, (1, 2, 4, 9), 9, True),
    RamPrimitive("RAMB18E1 SDP", 0.5, 0, 129, 0, 14, (1, 2, 4, 9, 18, 36), 9, True),
    RamPrimitive("RAMB36E1 SDP", 1.0, 0, 257, 0, 15, (1, 2, 4, 9, 18, 36, 72), 9, True),
    RamPrimitive("RAM32M", 0.0, 4, 8, 7, 5, (6,), 0, False),
    RamPrimitive("RAM64M", 0.0, 4, 8, 7, 6, (3,), 0, False),
)

LOGIC = {
    # Event engines: logic beside the memories, (fixed, per lane register bit), fitted to whole
    # builds (benchmarks/plan_calibration.py, docs/build.md).
    "EncodingLayer": {"luts": (850, 1.85), "ffs": (500, 2.6)},
    # SpikingLayer's LUTs per bit refitted after the LIF unit's shifts moved into its first
    # stage (892dcf8): the shipped example's conv2 at 8 lanes (1,606 by yosys, estimate 1,625;
    # tests/test_build_plan.py, slow) and the residual example's event engines at 16-32 lanes
    # (docs/measured.md: 2,511-4,709, estimates 2-10 % above) stay above synthesis.
    "SpikingLayer": {"luts": (520, 2.6), "ffs": (500, 3.1)},
    "ReadoutLayer": {"luts": (380, 1.2), "ffs": (170, 2.05)},
    # Dense streaming conv: priced from its constant weights (gen/engines/spiking_dense.py,
    # hw.dense_conv.lane_datapath): per leaf bit (a LUT6 adding up to three taps; past 16
    # groups a weight choice and a ±w/0 select per tap, `wide_leaf_luts`), per adder bit of
    # the trees, per register bit; the LIF unit per lane per current + membrane bit (hw/lif.py,
    # two stages). Fitted to yosys of random and trained weights (benchmarks/dense_engine.md:
    # 0.85-1.0 LUT per leaf + adder bit up to 16 groups, 2.1 per wide leaf bit at 64) and
    # rounded up, so that the estimate stays above synthesis.
    "DenseConvLayer": {"leaf_luts": 1.05, "wide_leaf_luts": 2.2, "adder_luts": 1.05, "register_ffs": 1.0,
                       "control_luts": 600, "control_ffs": 500, "lif_lane_luts": 3, "lif_lane_ffs": 2},
    # Dense encoding (benchmarks/dense_engine.md): per pixel tap bit of the window products (its
    # DSPs are counted from the weights, gen/engines/encoding_dense.py).
    "DenseEncodingLayer": {"pixel_tap_luts": 0.3, "pixel_tap_ffs": 0.1,
                           "control_luts": 600, "control_ffs": 500,
                           "lif_lane_luts": 3, "lif_lane_ffs": 2},
    # Dense readout: per tap bit (±w/0 select of a ROM weight, and its adder bit); checked against
    # the fast model's fc in its whole build (benchmarks/fast_build.md: 840 LUTs, 957 FFs).
    "DenseReadout": {"tap_luts": 1.6, "tap_ffs": 0.65, "control_luts": 250, "control_ffs": 120},
    # One MSAT lane's ladder logic (hw.msat_neuron.MSATUnit: the shifts of N and I, their clamps,
    # 2H − 1 narrow boundary comparisons and the LUT_d/LUT_x lookups), which the per register
    # bit fit above does not see: per H, per (N + I bits) × shift-width bit, and fixed. Fitted to
    # synth_xilinx of the unit alone at one lane (H 4-32, T 8-128, the shipped example's widths
    # and narrower, shift widths 3-6: 493-1,756 LUTs, the estimate 3-23 % above) (docs/msat.md §3b).
    "MSATUnit": {"half_luts": 36, "shifted_bit_luts": 1.6, "fixed_luts": 120},
    # The top's converters where a dense engine and an event engine meet (gen/engines/converters.py):
    # fitted to synth_xilinx of each alone, from its RTLIL and from its Verilog, and rounded up so
    # that the estimate stays above both (benchmarks/converters.md: C = 4-128, H·W = 1-784). EventsToMap:
    # its channel decode per channel and per channel x position bit, beside its map memory (priced by
    # gen.engines.memory); 1.0-1.6x synthesis. The skid buffer behind it: exact.
    "EventsToMap": {"fixed_luts": 40, "channel_luts": 0.75, "channel_position_bit_luts": 0.85, "fixed_ffs": 8},
    "SkidBuffer": {"fixed_luts": 4, "bit_luts": 1, "fixed_ffs": 2, "bit_ffs": 2},
    # MapToEvents: per channel; ABC maps one design up to 1.7x apart from RTLIL and from Verilog, so
    # the fit follows the worst of the two (1.06-2.4x the worse; 32 channels the closest).
    "MapToEvents": {"fixed_luts": 30, "channel_luts": 8.5, "fixed_ffs": 2},
}

XC7 = Device(
    name="xc7",
    ram_primitives=RAM_PRIMITIVES,
    logic_cost_rom=1 / 64,      # gen/backend/synth.py runs memory_libmap with -logic-cost-rom 0.015625
    logic_cost_ram=1.0,         # memory_libmap's default
    mux_cost=0.5,
    emulation_cost=2,
    top=(400, 500, 50),         # tern_top: AXI edges, register file, one event counter per layer
    logic=frozen_logic(LOGIC),
)
