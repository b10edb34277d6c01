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
from dataclasses import dataclass, field

from gen.boards.device import Device
from gen.errors import FactoryError, PlanError
from gen.ops import op_spec_named
from gen.ops.base import Geometry
from gen.engines.memory import Memory, addr_width, memory_mapping
from hw.event import bits_for, ladder_bits
from hw.msat_neuron import shift_width
from hw.sweep import signed_width, state_bits

SPIKE_FIFO_DEPTH = 16        # hw/sweep.py's FIFO of fired words


@dataclass(frozen=True)
class EngineContext:
    """What the cost model of one layer engine is asked about.

    `projections`: one Geometry per projection of the layer, in IR order (the first one is
    the layer's main input); an engine takes at most `EngineSpec.max_projections`.
    `traffic`: a gen.plan.Traffic (sops, events_out per image; `inputs`: per projection).
    `in_queue_depths`, `in_addr_widths`: the queue and event width of each projection's edge
    (`in_queue_depth`, `in_addr_width`: the main projection's).
    `device`: the board's device description (gen.boards.device): its memory primitives and
    the engine's fitted logic coefficients (`device.logic_of(engine.name)`).
    `neuron`, `tables`: the layer's neuron and, for a converted one, its NeuronTables (what
    its state word and its events hold, docs/msat.md). The address widths of events include
    the ladder index m of an msat source (`event_width`).
    `weights`: each projection's IR weights (a cost model that reads the constants: the dense
    engines'); empty where there is no network (benchmarks), and the model assumes the worst.
    """
    projections: tuple[Geometry, ...]
    lanes: int
    widths: dict
    timesteps: int
    wbits: int
    traffic: object
    device: Device
    in_queue_depth: int = 0
    in_addr_width: int = 0
    out_addr_width: int = 0
    in_queue_depths: tuple[int, ...] = ()
    in_addr_widths: tuple[int, ...] = ()
    neuron: str | None = None
    tables: object = None
    weights: tuple = field(default=(), compare=False, repr=False)   # IR weights per projection

    @property
    def geometry(self) -> Geometry:
        return self.projections[0]

    @property
    def queues(self) -> tuple[tuple[int, int], ...]:
        """(depth, event address width) of each input queue the engine holds."""
        depths = self.in_queue_depths or (self.in_queue_depth,)
        widths = self.in_addr_widths or (self.in_addr_width,)
        return tuple((d, w) for d, w in zip(depths, widths) if d)

    @property
    def ladder_steps(self) -> int:
        """M of an msat layer (its events carry m), 0 for any other."""
        return self.tables.ladder_steps if self.neuron == "msat" else 0

    @property
    def state_bits(self) -> int:
        """One neuron's word in the membrane memory (hw.sweep.state_bits: R, and n or S)."""
        amplitude = 2
        if self.neuron == "if_subtract":
            amplitude = signed_width([int(a) for a in self.tables.amplitude])
        return sum(state_bits(self.neuron or "ternary", self.widths["membrane_bits"], self.timesteps, amplitude))

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
    max_projections: int = 1        # projections one engine sums (several: an end-of-step join)
    ops: tuple[str, ...] | None = None   # the gen.ops it takes (None: every hardware op)
    # The neurons its sweep implements; a layer of another neuron (docs/msat.md: if_subtract,
    # msat) is refused naming it. An engine that adds them declares them here.
    neurons: tuple[str, ...] = ("ternary", "binary")
    # Whether it reads the (address, m) events of an msat source (docs/msat.md §3b), and from
    # at most how many projections of those (0: none).
    ladder_inputs: int = 0
    reads_events: bool = True       # its input is a spike event stream (addressed by the source)
    sends_events: bool = True       # its output is a spike event stream (the top queues it)
    owns_input_queue: bool = True   # the component queues its input itself (the top adds none)
    # The testbench adapter: the component's stream ports (`<name>__payload/valid/ready`).
    input_stream: str = "events_in"
    output_stream: str = "events"

    @property
    def name(self) -> str:
        """The engine's name in plan.json: its hw component's class name."""
        return self.component.__name__

    # ---- plan
    def check_layer(self, layer, where: str) -> None:
        """PlanError for a layer this engine cannot take (beyond its ops)."""
        if layer.neuron is not None and layer.neuron not in self.neurons:
            raise PlanError(f"{where}neuron {layer.neuron} has no hardware engine yet: the {self.name} engine "
                            f"takes {', '.join(self.neurons)} (docs/msat.md)")
        sources = [p.source for p in layer.projections]
        # Two projections from one source are two edges (two input streams, the source forked).
        if len(sources) > self.max_projections:
            raise PlanError(f"{where}the {self.name} engine takes at most {self.max_projections} "
                            f"projection(s) per layer, not {len(sources)} from {sources}")

    def check_sources(self, ladders: tuple[int, ...], sources, where: str) -> None:
        """PlanError where the layer reads (address, m) events (an msat source: M > 0 in
        `ladders`, one per projection) that this engine cannot decode."""
        msat = [s for s, m in zip(sources, ladders) if m]
        if msat and len(ladders) > self.ladder_inputs:
            raise PlanError(f"{where}the {self.name} engine does not read the (address, m) events of msat "
                            f"layer(s) {', '.join(map(repr, msat))}"
                            + (f" in a layer of {len(ladders)} projections" if self.ladder_inputs else "")
                            + " (docs/msat.md)")

    def check_ops(self, geometries, where: str) -> None:
        """PlanError for a projection op this engine does not take (listing those it does)."""
        for g in geometries:
            if self.ops is not None and g.op not in self.ops:
                raise PlanError(f"{where}the {self.name} engine does not take op {g.op}; it takes "
                                f"{', '.join(self.ops)}")

    def check_geometries(self, geometries, where: str) -> None:
        """PlanError for projection geometries this engine cannot build at any lane count (the
        planner then leaves the family out: it is no candidate for the layer). Checks that
        depend on the lanes are `check_context`'s."""

    def input_streams(self, count: int) -> tuple[str, ...]:
        """The input stream (port) of each projection: the testbench adapter for several inputs."""
        if count != 1:
            raise PlanError(f"the {self.name} engine has one input stream, not {count}")
        return (self.input_stream,)

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
        logic beside them, (fixed, per lane register bit) from the device's fit of this engine
        (`luts`, `ffs`), and the multipliers of the ops' decoders and the datapath."""
        bits = ctx.lanes * self.lane_bits(ctx)
        maps = [memory_mapping(m, ctx.device) for m in memories]
        fit = ctx.device.logic_of(self.name)
        luts = fit["luts"][0] + fit["luts"][1] * bits + sum(m.luts for m in maps)
        ffs = fit["ffs"][0] + fit["ffs"][1] * bits + sum(m.ffs for m in maps)
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


def hw_projection_of(projection, geometry: Geometry):
    """(hw geometry, hw weights) of one IR projection, by its op's registry entry."""
    spec = op_spec_named(geometry.op)
    return spec.hw_geometry(geometry), spec.hw_weights(projection.weight)


def main_projection_arguments(layer, lp, wbits: int, timesteps: int) -> dict:
    """Arguments every event engine takes: its projection's geometry and weights, bias, lanes."""
    g = lp.geometry
    spec = op_spec_named(g.op)
    return dict(geometry=spec.hw_geometry(g), weights=spec.hw_weights(layer.projections[0].weight),
                bias=layer.bias, lanes=lp.lanes, weight_width=wbits, steps=timesteps)


class LifSweepEngine(EngineSpec):
    """An event-family engine with a LIF sweep over its currents (encoding, spiking): one
    memory layout, one cycle model and one lane width for both."""

    def memories(self, ctx: EngineContext):
        return tuple(lif_memories(ctx) + input_queue_memory(ctx))

    def cycles(self, ctx: EngineContext) -> float:
        return lif_cycles(ctx)

    def estimate(self, ctx: EngineContext, memories) -> dict:
        out = super().estimate(ctx, memories)
        out["luts"] += ctx.lanes * msat_cell_luts(ctx)
        return out

    def lane_bits(self, ctx: EngineContext) -> int:
        """Weight, current and state word (R, and a converted neuron's n or S), and the ladder
        index m of an msat layer in the sweep's spike word."""
        return ctx.wbits + ctx.widths["accumulator_bits"] + ctx.state_bits + ladder_bits(ctx.ladder_steps)


def msat_cell_luts(ctx: EngineContext) -> int:
    """LUTs of one MSAT lane's ladder logic (hw.msat_neuron.MSATUnit: N and I shifted by the
    channel's shift, clamped, 2H − 1 boundary comparisons, the table lookups), which the fitted
    per-register-bit logic does not see; the device's fit (gen/boards/xc7.py "MSATUnit").
    0 for any other neuron."""
    if ctx.neuron != "msat":
        return 0
    t = ctx.tables
    fit = ctx.device.logic_of("MSATUnit")
    shift_bits = shift_width(list(t.d_shift) + list(t.x_shift))
    r_bits, s_bits = state_bits("msat", ctx.widths["membrane_bits"], ctx.timesteps)
    n_bits = r_bits + bits_for(ctx.timesteps) + s_bits + 2
    i_bits = ctx.widths["accumulator_bits"] + 2
    return math.ceil(fit["half_luts"] * t.lut_half + fit["shifted_bit_luts"] * (n_bits + i_bits) * shift_bits
                     + fit["fixed_luts"])


def lif_memories(ctx: EngineContext) -> list[Memory]:
    """The memories of an engine with a LIF sweep: weights, currents, membranes, the sweep's FIFO."""
    g = ctx.geometry
    positions = max(2, ctx.groups * g.out_positions)
    m_bits = ladder_bits(ctx.ladder_steps)
    lanes, widths = ctx.lanes, ctx.widths
    # One weight memory; several projections each have a section of (O/P)·fan-in words in it
    # (identity: fan-in 1, word g holding lane j's w[g·P + j]).
    fan_in = sum(p.fan_in for p in ctx.projections)
    return [Memory("weights", max(2, ctx.groups * fan_in), lanes * ctx.wbits, True, rom=True),
            Memory("currents", positions, lanes * widths["accumulator_bits"], True, transparent=True),
            Memory("membranes", positions, lanes * ctx.state_bits, True),
            # The sweep's FIFO of fired words: fire and sign bits (and m) per lane and the word's
            # base address (out_addr_width holds the event's m bits beside the address).
            Memory("spikes", SPIKE_FIFO_DEPTH, (2 + m_bits) * lanes + ctx.out_addr_width - m_bits, False)]


def input_queue_memory(ctx: EngineContext) -> list[Memory]:
    """The engine's own input queues (one per edge), where the plan gives it them."""
    return [Memory("queue" if i == 0 else f"queue{i}", depth, width + 2, False)      # addr (and m), neg, eos
            for i, (depth, width) in enumerate(ctx.queues)]


def accumulate_cycles(ctx: EngineContext) -> float:
    """Accumulator cycles per image: each projection's by its op (gen.ops: conv and dense
    P synaptic ops per cycle, identity one event per cycle)."""
    inputs = ctx.traffic.inputs
    if len(inputs) != len(ctx.projections):      # no per-projection traffic: all at P ops per cycle
        return ctx.traffic.sops / ctx.lanes
    return sum(op_spec_named(g.op).accumulate_cycles(g, ctx.lanes, sops, events)
               for g, (events, sops) in zip(ctx.projections, inputs))


def lif_cycles(ctx: EngineContext) -> float:
    """Synaptic ops / P, then T sweeps of (O/P)·positions words (+1 per eos).

    A sweep hands out at most one event per cycle (hw/sweep.py's serialiser; it stops
    issuing words while its FIFO is full), so the T sweeps last at least as many cycles as
    the events the layer sends: with many lanes that, not the words, is the sweep's cost.
    """
    words = ctx.groups * ctx.geometry.out_positions
    t = ctx.traffic
    join = ctx.timesteps if len(ctx.projections) > 1 else 0     # the join's registered step_done
    return accumulate_cycles(ctx) + max(ctx.timesteps * words, t.events_out) + ctx.timesteps + join


def event_ladder_steps(layer) -> int:
    """M of the ladder index an msat layer's events carry (docs/msat.md §3b); 0 for any other."""
    return layer.tables.ladder_steps if layer.neuron == "msat" else 0


def event_width(layer) -> int:
    """The bits of a layer's event beside neg and eos: its neuron address, and m for msat."""
    return addr_width(layer.size) + ladder_bits(event_ladder_steps(layer))


def lif_arguments(layer, lp) -> dict:
    """Arguments of an engine with a LIF sweep: thresholds, leak, neuron and widths."""
    w = lp.widths
    return dict(theta_pos=layer.theta_pos, theta_neg=layer.theta_neg, leak_shift=layer.leak_shift,
                kind=layer.neuron, current_width=w["accumulator_bits"], membrane_width=w["membrane_bits"])
