"""The dense readout (hw.dense_readout.DenseReadout), family "dense": a matrix-vector unit
over a dense map stream. Each beat (one position, C channels) takes O/PO cycles: PO lanes
of C constant-free taps (the weights come from a ROM word per position and group), adder
trees, the logits accumulated over all T steps; then + T·b, the argmax and the result.

Data-independent: cycles per image are hw.dense_readout.readout_cycles. The input is a map
stream (`stream_format` "map"), the output hw.readout's Result.
"""
from __future__ import annotations

import math

from hw.dense_readout import DenseReadout, readout_cycles

from gen.engines.base import EngineContext, EngineSpec
from gen.engines.memory import Memory, memory_mapping
from gen.engines.readout import readout_sum_width
from gen.engines.spiking_dense import hw_projection_of

# The logic model's coefficients are the device's (gen/boards/xc7.py, "DenseReadout").


def source_channels(ctx: EngineContext) -> int:
    """Channels of the source map: a beat's width (a vector source: one channel per feature,
    one position)."""
    return ctx.geometry.in_shape[0]


class ReadoutDenseEngine(EngineSpec):
    kind = "readout"
    family = "dense"
    component = DenseReadout
    ops = ("dense",)
    reads_events = False
    sends_events = False
    owns_input_queue = True
    stream_format = "map"
    input_stream = "maps_in"
    output_stream = "result"

    def memories(self, ctx: EngineContext):
        g, channels = ctx.geometry, source_channels(ctx)
        positions = g.fan_in // channels
        return (Memory("weights", max(2, positions * ctx.groups), ctx.lanes * channels * ctx.wbits, True, rom=True),)

    def cycles(self, ctx: EngineContext) -> float:
        channels = source_channels(ctx)
        return float(readout_cycles(channels, ctx.geometry.fan_in // channels, ctx.geometry.out_channels,
                                    ctx.lanes, ctx.timesteps))

    def lane_bits(self, ctx: EngineContext) -> int:
        return source_channels(ctx) * (ctx.wbits + 2)

    def estimate(self, ctx: EngineContext, memories) -> dict:
        fit = ctx.device.logic_of(self.name)
        maps = [memory_mapping(m, ctx.device) for m in memories]
        taps = ctx.lanes * self.lane_bits(ctx)
        sums = ctx.geometry.out_channels * readout_sum_width(ctx.widths, ctx.timesteps)
        luts = fit["control_luts"] + fit["tap_luts"] * taps + sums + sum(m.luts for m in maps)
        ffs = fit["control_ffs"] + fit["tap_ffs"] * taps + sums + ctx.geometry.out_channels * ctx.widths["logit_bits"]
        ffs += source_channels(ctx) * 2 * 2 + sum(m.ffs for m in maps)      # the beat, twice
        ffs += ctx.lanes * source_channels(ctx) * ctx.wbits                  # the ROM word, registered
        return {"luts": math.ceil(luts), "ffs": math.ceil(ffs), "bram36": sum(m.bram36 for m in maps), "dsps": 0}

    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        geometry, weights = hw_projection_of(layer.projections[0], lp.geometry)
        shape = lp.geometry.in_shape
        w = lp.widths
        return dict(geometry=geometry, weights=weights, bias=layer.bias, channels=shape[0], lanes=lp.lanes,
                    weight_width=wbits, steps=timesteps, current_width=w["accumulator_bits"],
                    logit_width=w["logit_bits"])


SPEC = ReadoutDenseEngine()
