"""The readout engine (hw.readout.ReadoutLayer): events in through its own queue, the
currents summed over T steps into the logits, then the argmax and the result out."""
from __future__ import annotations

from hw.readout import ReadoutLayer

from gen.engines.base import EngineContext, EngineSpec, input_queue_memory, main_projection_arguments
from gen.engines.memory import Memory


def readout_sum_width(widths: dict, timesteps: int) -> int:
    """The readout's current word: it sums T steps (hw/readout.py sizes it the same way)."""
    return max(widths["logit_bits"], widths["accumulator_bits"] + timesteps.bit_length()) + 1


class ReadoutEngine(EngineSpec):
    kind = "readout"
    component = ReadoutLayer
    sends_events = False
    ops = ("conv2d", "dense")         # its hw component's geometries
    ladder_inputs = 1               # it reads an msat source's (address, m) events (docs/msat.md §3b)
    input_stream = "events_in"
    output_stream = "result"
    # Fitted to synthesis like the encoding engine's (benchmarks/plan_calibration.md).

    def memories(self, ctx: EngineContext):
        g, lanes = ctx.geometry, ctx.lanes
        return (Memory("weights", max(2, ctx.groups * g.fan_in), lanes * ctx.wbits, True, rom=True),
                Memory("currents", max(2, ctx.groups), lanes * readout_sum_width(ctx.widths, ctx.timesteps), True,
                       transparent=True),
                *input_queue_memory(ctx))

    def cycles(self, ctx: EngineContext) -> float:
        """Synaptic ops / P, then T end-of-step beats and one cycle per logit for the argmax."""
        return ctx.traffic.sops / ctx.lanes + ctx.timesteps + ctx.geometry.out_channels

    def lane_bits(self, ctx: EngineContext) -> int:
        return ctx.wbits + readout_sum_width(ctx.widths, ctx.timesteps)

    def extra_ffs(self, ctx: EngineContext) -> int:
        return ctx.geometry.out_channels * ctx.widths["logit_bits"]      # the logits are registers

    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        w = lp.widths
        return dict(main_projection_arguments(layer, lp, wbits, timesteps), logit_width=w["logit_bits"],
                    current_width=w["accumulator_bits"], queue_depth=input_queue_depth,
                    ladder_steps=lp.inputs[0].ladder_steps if lp.inputs else 0)


SPEC = ReadoutEngine()
