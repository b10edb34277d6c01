"""The spiking engine (hw.layer.SpikingLayer): events in through its own queues (one per
projection), ±weights into the currents (W << (M − m) for an msat source's (address, m) events),
T sweeps of its neurons (LIF, if_subtract or msat: hw.sweep), spike events out.

A layer with several projections (a residual block's main conv plus its shortcut) gets one
input stream and queue per projection and an end-of-step join (docs/hardware.md, "Graph-shaped
hardware"); every projection is priced here: its section of the weight memory, its queue,
its accumulator cycles (gen.ops), its decoder."""
from __future__ import annotations

from hw.layer import SpikingLayer, input_port
from hw.msat_neuron import MSATTables
from hw.projection import Projection
from hw.sweep import SWEEP_KINDS

from gen.engines.base import EngineContext, LifSweepEngine, hw_projection_of, lif_arguments

# Tested in hw (tests/test_hw_layer.py: up to three projections summed): the join's
# round-robin choice widens with every input.
MAX_PROJECTIONS = 3
# The sweep (hw.sweep.LIFSweep) runs these: hw.lif's LIF unit (docs/msat.md §3a for
# if_subtract) and hw.msat_neuron's MSAT unit (§3b: its events carry (address, m)).
LIF_NEURONS = SWEEP_KINDS


def neuron_arguments(layer) -> dict:
    """The converted neuron's parameters for the sweep (hw.sweep.LIFSweep): an if_subtract
    layer's amplitude A per channel and whether it may send −1 (the IR's `signed`); an msat
    layer's ladder (its tables, and d_shift, x_shift per channel)."""
    t = layer.tables
    if layer.neuron == "if_subtract":
        return dict(amplitude=[int(a) for a in t.amplitude], correction=bool(t.signed))
    if layer.neuron == "msat":
        return dict(msat=MSATTables(ladder_steps=t.ladder_steps, lut_half=t.lut_half, lut_d=t.lut_d.tolist(),
                                    lut_x=t.lut_x.tolist(), ladder_z=t.ladder_z.tolist(), d_shift=t.d_shift.tolist(),
                                    x_shift=t.x_shift.tolist(), half_start=bool(t.half_start)))
    return {}


def source_arguments(lp) -> dict:
    """M of each msat source (0 for any other): the accumulator adds W << (M − m) for its events."""
    ladders = [e.ladder_steps for e in lp.inputs] or [0]
    return dict(ladder_steps=ladders[0] if len(ladders) == 1 else ladders)


def port_labels(layer) -> list[str]:
    """The hw.projection source label of each projection: its source's name, made unique where
    two projections read one source (a residual block whose body is one conv: the main conv
    and the shortcut both read the block's input). The top connects edges by input stream."""
    labels = []
    for i, p in enumerate(layer.projections):
        label = p.source
        while label in labels or (label != p.source and label in {q.source for q in layer.projections}):
            label = f"{label}_{i}"
        labels.append(label)
    return labels


class SpikingEngine(LifSweepEngine):
    kind = "spiking"
    component = SpikingLayer
    max_projections = MAX_PROJECTIONS
    neurons = LIF_NEURONS
    ladder_inputs = MAX_PROJECTIONS     # every projection may read an msat source's (address, m) events
    input_stream = "events_in"
    output_stream = "events"
    # Fitted to synthesis like the encoding engine's (benchmarks/plan_calibration.md).
    # Per projection beyond the first: its address decode (four registered stages beside the
    # main one's), its walker table row and the join's input; per identity projection, the
    # lane mask through the pipeline. Estimated from the RTL's registers, not fitted yet.
    extra_projection_logic = (250, 300)          # (LUTs, FFs)
    identity_lane_logic = (3, 4)                 # (LUTs, FFs) per lane

    def input_streams(self, count: int) -> tuple[str, ...]:
        return tuple(input_port(i) for i in range(count))

    def estimate(self, ctx: EngineContext, memories) -> dict:
        out = super().estimate(ctx, memories)
        if len(ctx.projections) > 1:
            extra = len(ctx.projections) - 1
            identity = any(g.op == "identity" for g in ctx.projections)
            out["luts"] += extra * self.extra_projection_logic[0] + identity * ctx.lanes * self.identity_lane_logic[0]
            out["ffs"] += extra * self.extra_projection_logic[1] + identity * ctx.lanes * self.identity_lane_logic[1]
        return out

    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        """Every projection as a hw.projection.Projection (one of conv or dense builds exactly
        the one-projection engine), with the queue depth of each edge from the plan."""
        geometries = lp.geometries or (lp.geometry,)
        projections = [Projection(label, *hw_projection_of(p, g))
                       for label, p, g in zip(port_labels(layer), layer.projections, geometries)]
        depths = [e.queue_depth for e in lp.inputs] or [input_queue_depth]
        return dict(geometry=None, weights=None, projections=projections, bias=layer.bias, lanes=lp.lanes,
                    weight_width=wbits, steps=timesteps, **lif_arguments(layer, lp), **neuron_arguments(layer),
                    **source_arguments(lp), queue_depth=depths[0] if len(depths) == 1 else depths)


SPEC = SpikingEngine()
