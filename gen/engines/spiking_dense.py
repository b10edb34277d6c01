"""The dense streaming conv engine (hw.dense_conv.DenseConvLayer), family "dense": a dense
ternary map stream in (one position, all channels, per beat), a line buffer and a sliding
k×k window, PO lanes of constant-weight ±w/0 taps and adder trees, the LIF unit, a dense
map stream out (docs/hardware.md, "Dense streaming engines").

Its cost does not depend on the spikes: cycles per image come from the engine's own
schedule (`hw.dense_conv.schedule_cycles`, equal to simulation cycle for cycle); LUTs and
FFs depend on the constant weights themselves (zero taps cost nothing, small weights make
narrow leaves and adders: `hw.dense_conv.lane_datapath`). The plan offers it beside the
event family for every layer its checks take (`check_layer`, `check_sources`, `check_ops`,
`check_geometries`; docs/build.md, "Limits of the engine families"). Its widths are the
compiler's bounds (`arguments`: gen.ir.bounds' accumulator and membrane bits).

Stream topology: neither events nor pixels. `reads_events` and `sends_events` are False and
`stream_format` is "map": a top must connect it to a dense map producer and consumer, or put
hw.dense_convert's converters at the boundaries (an event engine before or after it).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from hw.dense_conv import (MIN_NEURON_WORDS, DenseConvLayer, default_buffer_rows, lane_datapath,
                           schedule_cycles, table_leaves)
from hw.geometry import ConvGeometry
from hw.lif import NEURON_KINDS

from gen.boards.device import Device
from gen.boards.xc7 import XC7
from gen.errors import PlanError
from gen.ops import op_spec_named
from gen.ops.base import Geometry
from gen.engines.base import EngineContext, EngineSpec
from gen.engines.memory import Memory, memory_mapping

# The logic model reads the constant weights: hw.dense_conv.lane_datapath replays how the
# engine builds each lane's leaves (a LUT6 per bit adding up to three taps, zero taps left
# out) and adder tree, and the device's coefficients (gen/boards/xc7.py, "DenseConvLayer")
# price its leaf, adder and register bits.


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


def lane_weights(ctx: EngineContext) -> np.ndarray:
    """The main projection's hw weights as [O, C·k·k] (the constants of the taps); where the
    context has none (no network), the worst case: every weight at the most negative value
    of its width, so no tap is left out and every leaf is as wide as it can be."""
    if ctx.weights:
        w = op_spec_named(ctx.geometry.op).hw_weights(ctx.weights[0])
        return np.asarray(w, dtype=np.int64).reshape(ctx.geometry.out_channels, -1)
    return np.full((ctx.geometry.out_channels, ctx.geometry.fan_in), -(1 << (ctx.wbits - 1)), dtype=np.int64)


def datapath_bits(weights: np.ndarray, lanes: int) -> dict:
    """hw.dense_conv.lane_datapath added up over the lanes: leaves, leaf bits, adder bits and
    register bits of the taps and trees that these constant weights [O, taps] make."""
    return dict(_datapath_bits(weights.tobytes(), weights.shape, lanes))


@lru_cache(maxsize=512)
def _datapath_bits(raw: bytes, shape: tuple[int, int], lanes: int) -> tuple:
    w = np.frombuffer(raw, dtype=np.int64).reshape(shape)
    groups = shape[0] // lanes
    total = {}
    for j in range(lanes):
        lane = w[j::lanes].T.tolist()           # [tap][group]: output channel g·lanes + j
        for key, value in lane_datapath(lane, groups).items():
            total[key] = total.get(key, 0) + value
    return tuple(sorted(total.items()))


def check_neuron_words(engine: str, geometry, lanes: int, where: str) -> None:
    """PlanError unless output positions × O/lanes >= hw.dense_conv.MIN_NEURON_WORDS: the LIF
    unit reads a membrane word again only that many emits after writing it (docs/hardware.md)."""
    words = geometry.out_positions * (geometry.out_channels // lanes)
    if words < MIN_NEURON_WORDS:
        raise PlanError(f"{where}the {engine} engine needs at least {MIN_NEURON_WORDS} neuron words per step "
                        f"(output positions × O/lanes), not {words}" + (f" at {lanes} lanes" if lanes > 1 else ""))


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

    def check_geometries(self, geometries, where: str) -> None:
        """Not a candidate where even one lane leaves fewer than MIN_NEURON_WORDS words."""
        check_neuron_words(self.name, geometries[0], 1, where)

    def check_context(self, ctx: EngineContext, where: str = "") -> None:
        check_neuron_words(self.name, ctx.geometry, ctx.lanes, where)

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
        d = datapath_bits(lane_weights(ctx), ctx.lanes)
        leaf_luts = fit["leaf_luts"] if table_leaves(ctx.groups) else fit["wide_leaf_luts"]
        maps = [memory_mapping(m, ctx.device) for m in memories]
        window = g.kernel * g.kernel * g.in_channels * 2
        lif_bits = ctx.lanes * self.lane_bits(ctx)
        luts = fit["control_luts"] + leaf_luts * d["leaf_bits"] + fit["adder_luts"] * d["adder_bits"]
        luts += fit["lif_lane_luts"] * lif_bits + sum(m.luts for m in maps)
        # The line buffer's read register: LUT RAM reads asynchronously, the sync port is FFs.
        line_read = default_buffer_rows(g.kernel, g.stride) * g.in_channels * 2
        ffs = fit["control_ffs"] + fit["register_ffs"] * d["register_bits"] + window + line_read
        ffs += fit["lif_lane_ffs"] * lif_bits
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
                  device: Device = XC7, weights=None) -> EngineContext:
    """The cost model's context for one hw conv geometry (benchmarks and tests: no network, no
    board; the device is the one the fits were made on unless given). Without `weights`
    ([O, C, k, k]) the model prices the worst case."""

    g = geometry
    plan_geometry = Geometry("conv2d", (g.in_channels, g.in_height, g.in_width),
                             (g.out_channels, g.out_height, g.out_width), fan_in=g.fan_in,
                             out_positions=g.out_positions, kernel=g.kernel, stride=g.stride, padding=g.padding)
    return EngineContext(projections=(plan_geometry,), lanes=lanes, widths=widths, timesteps=steps, wbits=wbits,
                         traffic=None, device=device, weights=() if weights is None else (weights,))
