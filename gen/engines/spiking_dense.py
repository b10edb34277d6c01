"""The dense streaming conv engine (hw.dense_conv.DenseConvLayer), family "dense": a dense
ternary map stream in (one position, all channels, per beat), a line buffer and a sliding
k×k window, PO lanes of constant-weight ±w/0 taps and adder trees, the LIF unit, a dense
map stream out (docs/hardware.md, "Dense streaming engines").

Its cost does not depend on the spikes: cycles per image come from the engine's own
schedule (`hw.dense_conv.schedule_cycles`, equal to simulation cycle for cycle), LUTs and
FFs grow with the taps (lanes × C·k·k) and their weight width. The plan keeps picking the
event family unless a layer's family is set to "dense" (gen.plan's `families`).

Stream topology: neither events nor pixels. `reads_events` and `sends_events` are False and
`stream_format` is "map": a top must connect it to a dense map producer and consumer, or put
hw.dense_convert's converters at the boundaries (an event engine before or after it).
"""
from __future__ import annotations

import math
from functools import lru_cache

from hw.dense_conv import DenseConvLayer, default_buffer_rows, schedule_cycles
from hw.geometry import ConvGeometry
from hw.lif import NEURON_KINDS

from gen.boards.device import Device
from gen.boards.xc7 import XC7
from gen.errors import PlanError
from gen.ops import op_spec_named
from gen.ops.base import Geometry
from gen.engines.base import EngineContext, EngineSpec
from gen.engines.memory import Memory, memory_mapping

# The logic model's coefficients are the device's (gen/boards/xc7.py, "DenseConvLayer"): a tap
# bit is one of lanes × C·k·k taps × (wbits + 2) bits, the ±w/0 select and its adder bits,
# whose LUTs grow with F, the groups whose constant weights the tap muxes.


def conv_geometry(ctx: EngineContext) -> ConvGeometry:
    g = ctx.geometry
    c, h, w = g.in_shape
    return ConvGeometry(in_channels=c, in_height=h, in_width=w, out_channels=g.out_channels,
                        kernel=g.kernel, stride=g.stride, padding=g.padding)


@lru_cache(maxsize=4096)
def period_cycles(geometry: ConvGeometry, lanes: int, steps: int) -> int:
    """Cycles per image of images back to back: the steady-state period of the schedule."""
    return schedule_cycles(geometry, lanes, steps=steps, images=3) - schedule_cycles(geometry, lanes, steps=steps,
                                                                                     images=2)


def hw_projection_of(projection, geometry):
    """(hw geometry, hw weights) of an IR projection, by its op's registry entry."""
    spec = op_spec_named(geometry.op)
    return spec.hw_geometry(geometry), spec.hw_weights(projection.weight)


def membrane_memory(ctx: EngineContext) -> tuple[Memory, ...]:
    """The membranes, (O/PO)·H_out·W_out words of PO fields; none at T = 1, where the LIF unit
    never reads R (R^-1 = 0) and synthesis removes the memory."""
    if ctx.timesteps == 1:
        return ()
    return (Memory("membranes", max(2, ctx.groups * ctx.geometry.out_positions),
                   ctx.lanes * ctx.widths["membrane_bits"], True),)


def tap_bits(ctx: EngineContext) -> int:
    return ctx.lanes * ctx.geometry.fan_in * (ctx.wbits + 2)


class SpikingDenseEngine(EngineSpec):
    kind = "spiking"
    family = "dense"
    component = DenseConvLayer
    ops = ("conv2d",)
    reads_events = False
    sends_events = False
    owns_input_queue = True         # a map stream needs no queue: the line buffer is its buffer
    stream_format = "map"           # hw/ternary_stream.py on both sides
    input_stream = "maps_in"
    output_stream = "maps"
    neurons = NEURON_KINDS            # the LIF unit it reuses (hw/lif.py); EngineSpec.check_layer refuses others

    def check_context(self, ctx: EngineContext, where: str = "") -> None:
        if ctx.geometry.op != "conv2d":
            raise PlanError(f"{where}the {self.name} engine takes op conv2d, not {ctx.geometry.op}")
        words = ctx.geometry.out_positions * ctx.groups
        if words < 4:
            raise PlanError(f"{where}the {self.name} engine needs at least 4 neuron words per step "
                            f"(output positions × O/lanes), not {words}")

    def memories(self, ctx: EngineContext):
        g = conv_geometry(ctx)
        rows = default_buffer_rows(g.kernel, g.stride)
        return (Memory("lines", max(2, g.in_width), rows * g.in_channels * 2, False),
                Memory("out_fifo", 4, 2 * g.out_channels + 2, False), *membrane_memory(ctx))

    def cycles(self, ctx: EngineContext) -> float:
        """Exact and data-independent: the schedule's period per image, back to back."""
        return float(period_cycles(conv_geometry(ctx), ctx.lanes, ctx.timesteps))

    def lane_bits(self, ctx: EngineContext) -> int:
        return ctx.widths["accumulator_bits"] + ctx.widths["membrane_bits"]

    def estimate(self, ctx: EngineContext, memories) -> dict:
        g = conv_geometry(ctx)
        fit = ctx.device.logic_of(self.name)
        per_tap = min(fit["tap_luts"] + fit["tap_luts_per_group"] * ctx.groups, fit["tap_luts_max"])
        maps = [memory_mapping(m, ctx.device) for m in memories]
        window = g.kernel * g.kernel * g.in_channels * 2
        luts = fit["control_luts"] + per_tap * tap_bits(ctx) + fit["lif_lane_luts"] * ctx.lanes * self.lane_bits(ctx)
        luts += sum(m.luts for m in maps)
        ffs = fit["control_ffs"] + fit["tap_ffs"] * tap_bits(ctx) + window + \
            fit["lif_lane_ffs"] * ctx.lanes * self.lane_bits(ctx)
        ffs += 2 * g.out_channels + sum(m.ffs for m in maps)     # the held spikes of a position
        return {"luts": math.ceil(luts), "ffs": math.ceil(ffs), "bram36": sum(m.bram36 for m in maps), "dsps": 0}

    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        geometry, weights = hw_projection_of(layer.projections[0], lp.geometry)
        w = lp.widths
        return dict(geometry=geometry, weights=weights, bias=layer.bias, theta_pos=layer.theta_pos,
                    theta_neg=layer.theta_neg, leak_shift=layer.leak_shift, steps=timesteps, kind=layer.neuron,
                    lanes=lp.lanes, weight_width=wbits, current_width=w["accumulator_bits"],
                    membrane_width=w["membrane_bits"])


SPEC = SpikingDenseEngine()


def dense_context(geometry: ConvGeometry, lanes: int, widths: dict, steps: int, wbits: int,
                  device: Device = XC7) -> EngineContext:
    """The cost model's context for one hw conv geometry (benchmarks and tests: no network, no
    board; the device is the one the fits were made on unless given)."""

    g = geometry
    plan_geometry = Geometry("conv2d", (g.in_channels, g.in_height, g.in_width),
                             (g.out_channels, g.out_height, g.out_width), fan_in=g.fan_in,
                             out_positions=g.out_positions, kernel=g.kernel, stride=g.stride, padding=g.padding)
    return EngineContext(projections=(plan_geometry,), lanes=lanes, widths=widths, timesteps=steps, wbits=wbits,
                         traffic=None, device=device)
