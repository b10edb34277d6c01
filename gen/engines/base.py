"""What every layer engine tells the compiler (the interface of an entry in gen.engines).

An engine is one module of gen/engines/ holding an `EngineSpec` subclass instance named
SPEC: the hw component it emits, the plan's cost model for it (memories, cycles, LUTs,
FFs, BRAM, DSPs), its checked emit factory, and its testbench adapter as data (the names
of its input and output streams, which hw.top and sim/ read from the build, never from
here). Engines are keyed by (layer kind, family): a kind may have several families (an
event-driven one today; a dense streaming one later) and the plan picks one per layer.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

from ..errors import FactoryError, PlanError
from ..ops import op_spec_named
from ..ops.base import Geometry
from .memory import Memory, memory_mapping

SPIKE_FIFO_DEPTH = 16        # hw/sweep.py's FIFO of fired words


@dataclass(frozen=True)
class EngineContext:
    """What the cost model of one layer engine is asked about.

    `projections`: one Geometry per projection of the layer, in IR order (the first one is
    the layer's main input); an engine takes at most `EngineSpec.max_projections`.
    `traffic`: a gen.plan.Traffic (sops, events_out per image).
    """
    projections: tuple[Geometry, ...]
    lanes: int
    widths: dict
    timesteps: int
    wbits: int
    traffic: object
    in_queue_depth: int = 0
    in_addr_width: int = 0
    out_addr_width: int = 0

    @property
    def geometry(self) -> Geometry:
        return self.projections[0]

    @property
    def groups(self) -> int:
        """Channel groups: the words per position of a P-field memory."""
        return self.geometry.out_channels // self.lanes


def check_arguments(component: type, arguments: dict, engine: str) -> None:
    """FactoryError unless `arguments` are exactly what `component.__init__` takes: every
    name one of its parameters and every parameter without a default given."""
    parameters = dict(inspect.signature(component.__init__).parameters)
    parameters.pop("self", None)
    accepted = {n for n, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    unknown = sorted(set(arguments) - accepted)
    missing = sorted(n for n in accepted - set(arguments) if parameters[n].default is inspect.Parameter.empty)
    if unknown or missing:
        raise FactoryError(f"the {engine} engine's factory and {component.__module__}.{component.__name__} "
                           f"disagree: unknown arguments {unknown}, missing arguments {missing}")


class EngineSpec:
    """The registry entry of one engine. Subclasses set the class attributes and
    implement `memories`, `cycles`, `lane_bits` and `arguments`."""

    kind: str = ""                  # the IR layer kind it implements (gen.ir.LAYER_KINDS)
    family: str = "event"           # engines of one kind: gen.plan picks one per layer
    component: type = object        # the hw class it emits
    max_projections: int = 1        # projections one engine sums (a join of several is future work)
    reads_events: bool = True       # its input is a spike event stream (addressed by the source)
    sends_events: bool = True       # its output is a spike event stream (the top queues it)
    owns_input_queue: bool = True   # the component queues its input itself (the top adds none)
    # The testbench adapter: the component's stream ports (`<name>__payload/valid/ready`).
    input_stream: str = "events_in"
    output_stream: str = "events"
    # Logic beside the memories: (fixed, per lane register bit), fitted to synthesis.
    logic_luts: tuple[float, float] = (0, 0)
    logic_ffs: tuple[float, float] = (0, 0)

    @property
    def name(self) -> str:
        """The engine's name in plan.json: its hw component's class name."""
        return self.component.__name__

    # ---- plan
    def check_layer(self, layer, where: str) -> None:
        """PlanError for a layer this engine cannot take (beyond its ops)."""
        if len(layer.projections) > self.max_projections:
            sources = [p.source for p in layer.projections]
            raise PlanError(f"{where}the {self.name} engine takes at most {self.max_projections} "
                            f"projection(s) per layer, not {len(sources)} from {sources}")

    def memories(self, ctx: EngineContext) -> tuple[Memory, ...]:
        raise NotImplementedError

    def cycles(self, ctx: EngineContext) -> float:
        """Cycles per image."""
        raise NotImplementedError

    def lane_bits(self, ctx: EngineContext) -> int:
        """A lane's register bits (what the fitted logic grows with)."""
        raise NotImplementedError

    def extra_ffs(self, ctx: EngineContext) -> int:
        """Flip-flops beside the logic fit and the memories (e.g. registers holding results)."""
        return 0

    def multiplier_dsps(self, ctx: EngineContext) -> int:
        """DSPs of the datapath (beyond the event decoders of its ops)."""
        return 0

    def estimate(self, ctx: EngineContext, memories) -> dict:
        """LUTs, FFs, BRAM36 and DSPs: the memories as yosys maps them (`memory_mapping`), the
        logic from logic_luts/logic_ffs, and the multipliers of the ops' decoders and the datapath."""
        bits = ctx.lanes * self.lane_bits(ctx)
        maps = [memory_mapping(m) for m in memories]
        luts = self.logic_luts[0] + self.logic_luts[1] * bits + sum(m.luts for m in maps)
        ffs = self.logic_ffs[0] + self.logic_ffs[1] * bits + sum(m.ffs for m in maps)
        ffs += self.extra_ffs(ctx)
        dsps = sum(op_decoder_dsps(g) for g in ctx.projections) + self.multiplier_dsps(ctx)
        return {"luts": math.ceil(luts), "ffs": math.ceil(ffs), "bram36": sum(m.bram36 for m in maps),
                "dsps": dsps}

    # ---- emit
    def arguments(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int) -> dict:
        """The component's constructor arguments for one layer (IR layer, gen.plan.LayerPlan)."""
        raise NotImplementedError

    def build(self, layer, lp, wbits: int, timesteps: int, input_queue_depth: int = 0):
        """The hw component of one layer; FactoryError if the arguments and the component's
        constructor disagree (nothing is dropped or guessed)."""
        arguments = self.arguments(layer, lp, wbits, timesteps, input_queue_depth)
        check_arguments(self.component, arguments, self.name)
        return self.component(**arguments)


def op_decoder_dsps(geometry: Geometry) -> int:
    return op_spec_named(geometry.op).decoder_dsps


def main_projection_arguments(layer, lp, wbits: int, timesteps: int) -> dict:
    """Arguments every event engine takes: its projection's geometry and weights, bias, lanes."""
    g = lp.geometry
    spec = op_spec_named(g.op)
    return dict(geometry=spec.hw_geometry(g), weights=spec.hw_weights(layer.projections[0].weight),
                bias=layer.bias, lanes=lp.lanes, weight_width=wbits, steps=timesteps)


def lif_memories(ctx: EngineContext) -> list[Memory]:
    """The memories of an engine with a LIF sweep: weights, currents, membranes, the sweep's FIFO."""
    g = ctx.geometry
    positions = max(2, ctx.groups * g.out_positions)
    lanes, widths = ctx.lanes, ctx.widths
    return [Memory("weights", max(2, ctx.groups * g.fan_in), lanes * ctx.wbits, True, rom=True),
            Memory("currents", positions, lanes * widths["accumulator_bits"], True, transparent=True),
            Memory("membranes", positions, lanes * widths["membrane_bits"], True),
            # The sweep's FIFO of fired words: fire and sign bits per lane and the word's base address.
            Memory("spikes", SPIKE_FIFO_DEPTH, 2 * lanes + ctx.out_addr_width, False)]


def input_queue_memory(ctx: EngineContext) -> list[Memory]:
    """The engine's own input queue, when the plan gives it one."""
    if not ctx.in_queue_depth:
        return []
    return [Memory("queue", ctx.in_queue_depth, ctx.in_addr_width + 2, False)]   # addr, neg, eos


def lif_cycles(ctx: EngineContext) -> float:
    """Synaptic ops / P, then T sweeps of (O/P)·positions words (+1 per eos).

    A sweep hands out at most one event per cycle (hw/sweep.py's serialiser; it stops
    issuing words while its FIFO is full), so the T sweeps last at least as many cycles as
    the events the layer sends: with many lanes that, not the words, is the sweep's cost.
    """
    words = ctx.groups * ctx.geometry.out_positions
    t = ctx.traffic
    return t.sops / ctx.lanes + max(ctx.timesteps * words, t.events_out) + ctx.timesteps


def lif_arguments(layer, lp) -> dict:
    """Arguments of an engine with a LIF sweep: thresholds, leak, neuron and widths."""
    w = lp.widths
    return dict(theta_pos=layer.theta_pos, theta_neg=layer.theta_neg, leak_shift=layer.leak_shift,
                kind=layer.neuron, current_width=w["accumulator_bits"], membrane_width=w["membrane_bits"])
