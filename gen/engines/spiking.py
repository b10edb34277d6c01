"""The spiking engine (hw.layer.SpikingLayer): events in through its own queue, ±weights
into the currents, T LIF sweeps, spike events out."""
from __future__ import annotations

from hw.layer import SpikingLayer

from .base import EngineContext, EngineSpec, input_queue_memory, lif_arguments, lif_cycles, lif_memories, \
    main_projection_arguments


class SpikingEngine(EngineSpec):
    kind = "spiking"
    component = SpikingLayer
    input_stream = "events_in"
    output_stream = "events"
    # Fitted to synthesis like the encoding engine's (benchmarks/plan_calibration.md).
    logic_luts = (520, 2.35)
    logic_ffs = (500, 3.1)

    def memories(self, ctx: EngineContext):
        return tuple(lif_memories(ctx) + input_queue_memory(ctx))

    def cycles(self, ctx: EngineContext) -> float:
        return lif_cycles(ctx)

    def lane_bits(self, ctx: EngineContext) -> int:
        return ctx.wbits + ctx.widths["accumulator_bits"] + ctx.widths["membrane_bits"]

    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        return dict(main_projection_arguments(layer, lp, wbits, timesteps), **lif_arguments(layer, lp),
                    queue_depth=input_queue_depth)


SPEC = SpikingEngine()
