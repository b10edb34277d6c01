"""The dense encoding engine (hw.dense_encoding.DenseEncodingLayer), family "dense": 8 pixels
per input beat (`pixels`, a 64-bit word), the image replayed T times, one k×k window of
pixels per cycle through PO lanes of constant multipliers (C·k·k each) and adder trees, the
LIF unit, a dense spike map out (`maps`, stream_format "map"). Cycles per image are the
conv schedule's at T steps (exact, data-independent; the 8-pixel input needs only C·H·W/8).
"""
from __future__ import annotations

import math

import numpy as np

from hw.dense_encoding import DenseEncodingLayer, beats_tile_planes
from hw.lif import NEURON_KINDS

from gen.engines.base import EngineContext, EngineSpec
from gen.engines.memory import Memory, memory_mapping
from gen.engines.spiking_dense import check_neuron_words, conv_geometry, hw_projection_of, lane_weights, \
    membrane_memory, period_cycles

# A tap is uint8 × a weight. With one group (F = 1) the weight is a constant: yosys makes the
# products by 0 and ± powers of two shifts and some others shifts and adds in LUTs, the rest
# DSP48E1s (the fast model's conv1: 56 DSPs for 216 taps); with several groups the weight is a
# register and every product a DSP48E1 (the shipped example's conv1 at F = 4: 72 of 72).
# `multiplier_taps` counts both cases from the weights, an upper bound on yosys's DSPs
# (benchmarks/dense_engine.md). LUTs and FFs per tap bit (lanes × C·k·k × (8 + wbits + 2)):
# the device's coefficients (gen/boards/xc7.py, "DenseEncodingLayer").


def multiplier_taps(weights, lanes: int) -> int:
    """Taps whose product may take a DSP48: with one group, those whose constant weight is
    not 0 or ± a power of two; with several, those with a nonzero weight in some group."""
    groups = weights.shape[0] // lanes
    if groups > 1:
        per_tap = np.abs(weights).reshape(groups, lanes, -1).max(axis=0)
        return int(np.count_nonzero(per_tap))
    magnitude = np.abs(weights)
    return int(np.count_nonzero((magnitude != 0) & (magnitude & (magnitude - 1) != 0)))


def aligner_cost(channels: int, positions: int) -> tuple[int, int]:
    """(LUTs, FFs) of hw.dense_encoding.PlaneAligner where the input needs one (beats that
    straddle two channel planes), else (0, 0). Not fitted to synthesis: its 16-pixel buffer
    (128 FFs and its counters) and, per buffer bit, the shift by a word and the append at one
    of 8 offsets, counted at 3 LUT6 a bit (above what the muxes take)."""
    if beats_tile_planes(channels, positions):
        return 0, 0
    bits = 2 * 8 * 8
    return 3 * bits, bits + 16


class EncodingDenseEngine(EngineSpec):
    kind = "encoding"
    family = "dense"
    component = DenseEncodingLayer
    ops = ("conv2d",)
    reads_events = False
    sends_events = False
    owns_input_queue = False
    stream_format = "map"
    input_format = "pixels8"         # hw.dense_encoding.wide_pixel_layout(8)
    input_stream = "pixels"
    output_stream = "maps"
    neurons = NEURON_KINDS            # the LIF unit it reuses (hw/lif.py); EngineSpec.check_layer refuses others

    def check_geometries(self, geometries, where: str) -> None:
        """What the hw component refuses at any lanes, before any Verilog (the planner then keeps
        the event family): one lane must leave 4 neuron words (as the dense conv). Any C·H·W is
        taken: beats that straddle two channel planes go through hw.dense_encoding.PlaneAligner."""
        check_neuron_words(self.name, geometries[0], 1, where)

    def check_context(self, ctx: EngineContext, where: str = "") -> None:
        check_neuron_words(self.name, ctx.geometry, ctx.lanes, where)

    def memories(self, ctx: EngineContext):
        g = conv_geometry(ctx)
        rows = 4 if g.stride == 1 else 8
        # hw.dense_encoding.PixelReplay: C planes of ceil(H·W/8) words of 8 pixels, read together.
        words = -(-g.in_height * g.in_width // 8)
        return (Memory("image", max(2, words), 64 * g.in_channels, False),
                Memory("lines", max(2, g.in_width), rows * g.in_channels * 8, False),
                Memory("out_fifo", 4, 2 * g.out_channels + 2, False), *membrane_memory(ctx))

    def cycles(self, ctx: EngineContext) -> float:
        return float(period_cycles(conv_geometry(ctx), ctx.lanes, ctx.timesteps))

    def lane_bits(self, ctx: EngineContext) -> int:
        return ctx.widths["accumulator_bits"] + ctx.widths["membrane_bits"]

    def estimate(self, ctx: EngineContext, memories) -> dict:
        g = conv_geometry(ctx)
        taps = ctx.lanes * ctx.geometry.fan_in * (8 + ctx.wbits + 2)
        fit = ctx.device.logic_of(self.name)
        dsps = multiplier_taps(lane_weights(ctx), ctx.lanes)
        maps = [memory_mapping(m, ctx.device) for m in memories]
        lif_bits = ctx.lanes * self.lane_bits(ctx)
        luts = fit["control_luts"] + fit["pixel_tap_luts"] * taps + fit["lif_lane_luts"] * lif_bits
        ffs = fit["control_ffs"] + fit["pixel_tap_ffs"] * taps + fit["lif_lane_ffs"] * lif_bits
        ffs += g.kernel * g.kernel * g.in_channels * 8 + 2 * g.out_channels
        aligner_luts, aligner_ffs = aligner_cost(g.in_channels, g.in_height * g.in_width)
        luts, ffs = luts + aligner_luts, ffs + aligner_ffs
        return {"luts": math.ceil(luts + sum(m.luts for m in maps)), "ffs": math.ceil(ffs + sum(m.ffs for m in maps)),
                "bram36": sum(m.bram36 for m in maps), "dsps": dsps}

    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        geometry, weights = hw_projection_of(layer.projections[0], lp.geometry)
        w = lp.widths
        return dict(geometry=geometry, weights=weights, bias=layer.bias, theta_pos=layer.theta_pos,
                    theta_neg=layer.theta_neg, leak_shift=layer.leak_shift, steps=timesteps, kind=layer.neuron,
                    lanes=lp.lanes, weight_width=wbits, current_width=w["accumulator_bits"],
                    membrane_width=w["membrane_bits"])


SPEC = EncodingDenseEngine()
