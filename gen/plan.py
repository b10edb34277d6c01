"""The hardware plan of a network: lanes, register widths, memories, queues and cycles.

    make_plan(net, board, lanes=None, images=None, families=None) -> Plan

Each layer runs on an engine from the registry (gen.engines: its memories, cycles and
resource estimate) and each projection's geometry comes from its op's entry (gen.ops);
this module chooses the lanes and the queues and adds up (docs/architecture.md).

* Lanes P per layer are the folding knob (docs/hardware.md): P must divide the layer's
  output channels. Given lanes are checked (an invalid P is an error listing the valid
  values, never snapped); the others are chosen by `auto_choice` (with the engine family): the highest image rate
  whose resource estimate fits a budget of the board, each layer with the fewest lanes
  that keep up with the slowest one.
* Register widths come from `gen.ir.bounds` (no overflow, no saturation).
* Memories as hw/ builds them: the lanes share each memory, a word holding one field per
  lane: weights (O/P)·C·k·k words, currents and membranes (O/P)·Ho·Wo words, the sweep's
  spike FIFO and the input queue. The estimate maps each one as yosys would
  (`memory_mapping`, gen/engines/memory.py) and adds the engine's logic, fitted to synthesis.
* Cycles per image per layer: synaptic ops / P (events × fan-out, measured by the golden
  model on held-out images) + T LIF sweeps of (O/P)·Ho·Wo cycles, or one cycle per event
  sent if that is longer. The layers run as a pipeline, so the slowest layer sets the
  image rate.
* Edges: the network is a DAG (a residual layer reads several sources, gen.ir). Every
  projection is one edge from its source layer to one input stream of the consuming
  engine, with its own event queue there (`Edge`, `Plan.edges`); a layer read by several
  layers feeds them through a fork in the top. The depth of each queue comes with the
  argument for why it can neither overflow nor deadlock (`QUEUE_JUSTIFICATION`).
* The total adds the top and, on every edge between a dense engine and an event engine, the
  converter the top puts there (`edge_converters`, gen/engines/converters.py).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from gen.ir.bounds import network_bounds
from gen.engines import DEFAULT_FAMILY, EngineContext, EngineSpec, engine_families, engine_spec
from gen.engines.base import SPIKE_FIFO_DEPTH  # noqa: F401 (re-exported: the plan's view of hw/sweep.py)
from gen.engines.base import event_ladder_steps, event_width, ladder_bits
from gen.engines.converters import converter_between, converter_estimate, map_shape
from gen.boards.device import Device
from gen.engines.memory import (Memory, MemoryMapping, addr_width, mapping_json,  # noqa: F401 (re-exported)
                             memory_mapping)
from gen.engines.readout import readout_sum_width  # noqa: F401 (re-exported)
from gen.errors import PlanError
from gen.ir.golden import fanout, run
from gen.ir import INPUT, Network
from gen.ops import hardware_geometry
from gen.ops.base import Geometry
from hw.axi import PIXELS_PER_BEAT

log = logging.getLogger(__name__)

# The share of each board resource the automatic choice may plan for (see auto_choice).
# LUTs: the engines' logic estimates lie close to yosys synth_xilinx: the dense engines above
# it on every fitted row (benchmarks/dense_engine.md; the shipped example's default build:
# 43,551 LUT estimated, 42,649 by yosys), the whole residual build 3.7 % below (its event
# engines, and its top's converters, queue and forks, which were not priced then; the
# converters are now, gen/engines/converters.py; docs/measured.md). The 15 % left covers that and
# Vivado's placement and routing, which yosys does not do; the build's synthesis step refuses
# a plan that does not fit whatever the estimate said.
RESOURCE_BUDGET = {"luts": 0.85, "ffs": 0.7, "bram36": 0.85, "dsps": 0.7}
# Keeps synthesis time and routing sane; a user may ask for more. The example's event-driven
# build with conv2 and conv3 at 32 took about 105 s on 2 idle cores; at 64 lanes their
# synthesis takes 1.5x as long, past two minutes for the whole build.
MAX_AUTO_LANES = 32
MIN_QUEUE_DEPTH = 16
# A queue also keeps the next layer busy while its producer is silent (an encoding layer
# accumulating the next image's pixels): on the example, 8192 instead of 4096 took the
# measured 84,328 cycles/image down to 78,581 (2 BRAM36 more per capped queue).
MAX_QUEUE_DEPTH = 8192
QUEUE_HEADROOM = 1.5         # over the measured peak events per step

# The smallest depth an edge's queue may have: what hw.event_queue.EventQueue accepts.
SMALLEST_QUEUE_DEPTH = 2

QUEUE_JUSTIFICATION = (
    "No overflow: every queue applies back-pressure (its input is not ready when full), and a "
    "fork pops a beat only when every consumer has taken it, so a producer stalls instead of "
    "dropping an event. No deadlock, at every depth the queues accept (>= 2): the engines form "
    "a DAG along the IR's edges (one queue per edge at its consumer, a fork where one layer "
    "feeds several), and an engine that reads several sources joins them at the end of each "
    "step by serving any input that has an event of the current step and holding an input only "
    "after its end-of-step marker. A stuck engine then always waits on another stuck engine "
    "that is strictly earlier in (step, topological order), which cannot go on forever: the "
    "pixel source and the result sink always move (docs/hardware.md, 'Why the fork and join "
    "cannot deadlock, with any queue depth'). The depth is a throughput knob: one that holds a "
    "step's peak events of the edge's source (measured on held-out images, with headroom) lets "
    "the producer finish its sweep without waiting for its consumers, lets a main path run a "
    "step ahead of a held shortcut, and lets a consumer work on while its producer is silent.")


# --------------------------------------------------------------------------- lanes


def valid_lanes(out_channels: int) -> list[int]:
    return [p for p in range(1, out_channels + 1) if out_channels % p == 0]


def parse_lanes_arg(text: str) -> dict[str, int]:
    """`conv2=16,fc1=2` -> {"conv2": 16, "fc1": 2}."""
    lanes = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().lstrip("-").isdigit():
            raise PlanError(f"--lanes must be layer=P[,layer=P...], not {text!r}")
        lanes[name.strip()] = int(value)
    if not lanes:
        raise PlanError(f"--lanes must be layer=P[,layer=P...], not {text!r}")
    return lanes


def parse_engines_arg(text: str) -> dict[str, str]:
    """`conv2=dense,fc=event` -> {"conv2": "dense", "fc": "event"} (--engine). The layers and
    whether their kind has the family are checked by make_plan, naming what is valid."""
    engines = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, family = item.partition("=")
        if not sep or not name.strip() or not family.strip():
            raise PlanError(f"--engine must be layer=family[,layer=family...], not {text!r}")
        engines[name.strip()] = family.strip()
    if not engines:
        raise PlanError(f"--engine must be layer=family[,layer=family...], not {text!r}")
    return engines


def load_lanes_config(path) -> dict[str, int]:
    """A JSON or TOML file with a table `lanes = {layer = P, ...}`."""
    import json
    import tomllib
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise PlanError(f"config file must exist, not {str(path)!r}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise PlanError(f"config file {str(path)!r} must be valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    lanes = data.get("lanes") if isinstance(data, dict) else None
    if not isinstance(lanes, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in lanes.values()):
        raise PlanError(f"config file {str(path)!r} must hold a table 'lanes' of layer = integer, not {lanes!r}")
    return dict(lanes)


def check_lanes(net: Network, lanes: dict[str, int]) -> dict[str, int]:
    names = [layer.name for layer in net.layers]
    for name, p in lanes.items():
        if name not in names:
            raise PlanError(f"lanes names a layer that does not exist: {name!r}; layers are {', '.join(names)}")
        valid = valid_lanes(net.layer(name).channels)
        if isinstance(p, bool) or not isinstance(p, int) or p not in valid:
            raise PlanError(f"lanes of layer {name!r} must be one of {valid} (divisors of "
                            f"{net.layer(name).channels} output channels), not {p!r}")
    return dict(lanes)


# --------------------------------------------------------------------------- per-layer facts


def layer_engine(layer, families: dict[str, str] | None = None) -> EngineSpec:
    """The registered engine of a layer: its kind's family chosen for it (DEFAULT_FAMILY unless
    `families` names another); PlanError naming the layer and the registered engines."""
    family = (families or {}).get(layer.name, DEFAULT_FAMILY)
    return engine_spec(layer.kind, family, f"layer {layer.name!r}: ")


def layer_geometries(net: Network, layer, engine: EngineSpec | None = None) -> tuple[Geometry, ...]:
    """The geometry of each projection (gen.ops); refuses what the engine cannot take."""
    where = f"layer {layer.name!r}: "
    engine = engine or layer_engine(layer)
    engine.check_layer(layer, where)
    engine.check_sources(tuple(source_ladder_steps(net, q.source) for q in layer.projections),
                         [q.source for q in layer.projections], where)
    geometries = tuple(hardware_geometry(q.op, net.source_shape(q.source), layer.shape, where)
                       for q in layer.projections)
    engine.check_ops(geometries, where)
    engine.check_geometries(geometries, where)
    return geometries


def layer_geometry(net: Network, layer) -> Geometry:
    """The main projection's geometry (`layer_geometries`' first)."""
    return layer_geometries(net, layer)[0]


@dataclass(frozen=True)
class Traffic:
    """Mean per image, measured by the golden model (or the worst case without images)."""
    events_out: float          # spikes this layer sends, summed over T
    peak_events_step: int      # max over images and steps
    sops: float                # synaptic ops into this layer, summed over T (all projections)
    measured: bool
    # Per projection, in IR order: (events arriving, synaptic ops) per image. A layer with one
    # projection has its totals here (the same `sops`).
    inputs: tuple[tuple[float, float], ...] = ()


def _projection_fanouts(net: Network, layer) -> list[np.ndarray]:
    return [fanout(p.op, p.weight, net.source_shape(p.source), layer.shape).reshape(-1) for p in layer.projections]


def measure_traffic(net: Network, images) -> dict[str, Traffic]:
    """Run the golden model on `images` and count events and synaptic ops per layer and projection."""
    result = run(net, images, record=True)
    traffic = {}
    enc = net.layers[0]
    nonzero = (np.asarray(images).reshape(len(images), -1) != 0).astype(np.int64)
    enc_sops = float(sum(nonzero @ f for f in _projection_fanouts(net, enc)).mean())
    for layer in net.layers:
        if layer.kind == "encoding":
            sops, inputs = enc_sops, ((float(nonzero.sum(axis=1).mean()), enc_sops),)
        else:
            sops = float(result.sops[layer.name].sum(axis=1).mean())
            inputs = _measured_inputs(net, layer, result, sops, len(images))
        if layer.kind == "readout":
            traffic[layer.name] = Traffic(0.0, 0, sops, True, inputs)
            continue
        events = result.events[layer.name]
        traffic[layer.name] = Traffic(float(events.sum(axis=1).mean()), int(events.max()), sops, True, inputs)
    return traffic


def _measured_inputs(net: Network, layer, result, sops: float, n: int) -> tuple[tuple[float, float], ...]:
    """(events, synaptic ops) per image of each projection of a spike-driven layer."""
    events = [float(result.events[p.source].sum(axis=1).mean()) for p in layer.projections]
    if len(layer.projections) == 1:
        return ((events[0], sops),)
    out = []
    for p, e, f in zip(layer.projections, events, _projection_fanouts(net, layer)):
        active = np.abs(result.spikes[p.source]).reshape(n, net.timesteps, -1).astype(np.int64)
        out.append((e, float((active @ f).sum(axis=1).mean())))
    return tuple(out)


def worst_case_traffic(net: Network) -> dict[str, Traffic]:
    """Every neuron spiking at every step: the bound when no images are given."""
    traffic, T = {}, net.timesteps
    for layer in net.layers:
        steps = 1 if layer.kind == "encoding" else T     # the pixels arrive once per image
        fanouts = _projection_fanouts(net, layer)
        sops = float(sum(int(f.sum()) for f in fanouts))
        sops = sops if layer.kind == "encoding" else sops * T
        inputs = tuple((float(f.size * steps), float(int(f.sum()) * steps)) for f in fanouts)
        if len(inputs) == 1:
            inputs = ((inputs[0][0], sops),)
        events = 0 if layer.kind == "readout" else layer.size
        traffic[layer.name] = Traffic(float(events * T), events, sops, False, inputs)
    return traffic


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Edge:
    """One projection as hardware: events of `source` (INPUT: the pixels) into input stream
    `stream` of the engine of `target`, through a queue of `queue_depth` there (0: none)."""
    source: str
    target: str
    projection: int                         # its index in the target's projections
    stream: str                             # the target engine's input stream (its port name)
    queue_depth: int
    addr_width: int                         # event bits beside neg/eos: the address, and m (0 for the pixels)
    ladder_steps: int = 0                   # M of an msat source: its events carry m (docs/msat.md)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EdgeConverter:
    """The converter hw.top puts on the edge `source` -> `target` (projection `projection`)
    where one end is a dense engine and the other an event engine: an EventsToMap (and the skid
    buffer behind it) into a dense consumer, a MapToEvents into an event one, for maps of
    `shape` (C, H, W), the source's neurons; `estimate` from gen.engines.converters."""
    source: str
    target: str
    projection: int
    converter: str                          # the hw.dense_convert class
    shape: tuple[int, int, int]
    estimate: dict

    def to_json(self) -> dict:
        return {**asdict(self), "shape": list(self.shape)}


@dataclass(frozen=True)
class LayerPlan:
    name: str
    kind: str
    engine: str
    neuron: str | None
    geometry: Geometry                      # the main projection's (geometries[0])
    lanes: int
    valid_lanes: tuple[int, ...]
    lanes_source: str                       # "user" or "auto"
    in_addr_width: int                      # events into this layer (0 for the encoding layer); with m from msat
    out_addr_width: int                     # events out (0 for the readout): address bits, and m for msat
    widths: dict                            # current/accumulator/membrane/logit bits
    memories: tuple[Memory, ...]
    queue_depth: int                        # the queue of each edge leaving this layer (0 for the readout)
    traffic: Traffic
    cycles: float                           # per image
    estimate: dict                          # luts, ffs, bram36, dsps
    geometries: tuple[Geometry, ...] = ()   # one per projection, in IR order
    inputs: tuple[Edge, ...] = ()           # the edges into this layer, one per projection
    family: str = DEFAULT_FAMILY            # the engine family (gen.engines): event or dense
    family_source: str = "default"          # "user" (--engine), "auto" (chosen) or "default"
    family_reason: str = ""                 # why the planner chose it (the report says so)
    mappings: tuple[MemoryMapping, ...] = ()  # how the device builds each memory (memory_mapping)

    def to_json(self) -> dict:
        d = asdict(self)
        d["geometry"] = self.geometry.to_json()
        d["geometries"] = [g.to_json() for g in self.geometries]
        d["inputs"] = [e.to_json() for e in self.inputs]
        d["valid_lanes"] = list(self.valid_lanes)
        d["memories"] = [{**asdict(m), "bits": m.bits, "mapping": mapping_json(mapping)}
                         for m, mapping in zip(self.memories, self.mappings)]
        d.pop("mappings")
        return d


@dataclass(frozen=True)
class Plan:
    network: str
    board: str
    clock_mhz: float
    timesteps: int
    layers: tuple[LayerPlan, ...]
    input_cycles: int                       # the input's own rate: pixels, or 8-pixel beats (input_cycles())
    estimate: dict                          # totals: the layers, the top and the converters
    queue_justification: str = QUEUE_JUSTIFICATION
    notes: tuple[str, ...] = field(default_factory=tuple)
    converters: tuple[EdgeConverter, ...] = ()     # one per edge between a dense and an event engine
    estimate_shares: dict = field(default_factory=dict)   # {"top": ..., "converters": ...}: parts of `estimate`

    @property
    def bottleneck(self) -> LayerPlan:
        return max(self.layers, key=lambda lp: lp.cycles)

    @property
    def cycles_per_image(self) -> float:
        return max(self.input_cycles, self.bottleneck.cycles)

    @property
    def images_per_second(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_image

    @property
    def latency_cycles(self) -> float:
        return self.input_cycles + sum(lp.cycles for lp in self.layers)

    def layer(self, name: str) -> LayerPlan:
        for lp in self.layers:
            if lp.name == name:
                return lp
        raise KeyError(name)

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every edge of the hardware graph, by consumer (topological order), then projection."""
        return tuple(e for lp in self.layers for e in lp.inputs)

    def consumers(self, name: str) -> tuple[Edge, ...]:
        """The edges leaving layer `name` (several: the top forks its events)."""
        return tuple(e for e in self.edges if e.source == name)

    def to_json(self) -> dict:
        return {"network": self.network, "board": self.board, "clock_mhz": self.clock_mhz,
                "timesteps": self.timesteps, "input_cycles": self.input_cycles,
                "cycles_per_image": self.cycles_per_image, "images_per_second": self.images_per_second,
                "latency_cycles": self.latency_cycles, "bottleneck": self.bottleneck.name,
                "estimate": self.estimate, "estimate_shares": self.estimate_shares,
                "queue_justification": self.queue_justification,
                "notes": list(self.notes), "edges": [e.to_json() for e in self.edges],
                "converters": [c.to_json() for c in self.converters],
                "layers": [lp.to_json() for lp in self.layers]}


def queue_depth(traffic: Traffic, neurons: int) -> int:
    """Holds a step's peak events with headroom, capped by what a step can ever send."""
    need = math.ceil(traffic.peak_events_step * QUEUE_HEADROOM) + 1
    cap = 1 << (neurons + 1 - 1).bit_length()     # a step sends at most `neurons` + 1 beats
    depth = 1 << max(0, need - 1).bit_length()
    return int(min(MAX_QUEUE_DEPTH, max(MIN_QUEUE_DEPTH, min(depth, cap))))


def check_queue_depth(depth) -> int | None:
    """A forced depth for every queue (make_plan's `queue_depths`), or None."""
    if depth is None:
        return None
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < SMALLEST_QUEUE_DEPTH:
        raise PlanError(f"queue depth must be an integer >= {SMALLEST_QUEUE_DEPTH} (what the event queue "
                        f"accepts), not {depth!r}")
    return depth


def source_queue_depth(net: Network, source: str, traffic, forced: int | None = None) -> int:
    """The depth of the queue of every edge leaving `source` (its events per step, with headroom)."""
    if forced is not None:
        return forced
    return queue_depth(traffic[source], net.layer(source).size)


def source_ladder_steps(net: Network, source: str) -> int:
    """M of the ladder index the events of `source` carry (an msat layer), 0 otherwise."""
    return 0 if source == INPUT else event_ladder_steps(net.layer(source))


def layer_inputs(net: Network, layer, engine: EngineSpec, traffic, forced: int | None = None) -> tuple[Edge, ...]:
    """The edges into `layer`: one per projection, each with its queue (none for the pixels or
    for an engine that reads no events) and its event address width."""
    streams = engine.input_streams(len(layer.projections))
    edges = []
    for i, (p, stream) in enumerate(zip(layer.projections, streams)):
        events = engine.reads_events and p.source != INPUT
        depth = source_queue_depth(net, p.source, traffic, forced) if events else 0
        width = event_width(net.layer(p.source)) if events else 0
        edges.append(Edge(p.source, layer.name, i, stream, depth, width, source_ladder_steps(net, p.source)))
    return tuple(edges)


def top_estimate(layers: int, device: Device) -> dict:
    """The top (AXI edges, register file, one event counter per layer; tern_top has no queue)."""
    luts, ffs, per_layer = device.top
    return {"luts": luts + per_layer * layers, "ffs": ffs + per_layer * layers, "bram36": 0.0, "dsps": 0}


def edge_converters(plans, timesteps: int, device: Device) -> tuple[EdgeConverter, ...]:
    """The converter of every edge whose producer sends what its consumer does not read (an
    event engine into a dense one, or back), in `Plan.edges` order; the pixels need none."""
    by_name = {lp.name: lp for lp in plans}
    specs = {lp.name: engine_spec(lp.kind, lp.family) for lp in plans}
    out = []
    for lp in plans:
        for e in lp.inputs:
            if e.source not in by_name:
                continue
            name = converter_between(specs[e.source], specs[lp.name])
            if name is not None:
                shape = map_shape(by_name[e.source].geometry.out_shape)
                out.append(EdgeConverter(e.source, lp.name, e.projection, name, shape,
                                         converter_estimate(name, shape, timesteps, device)))
    return tuple(out)


def _summed(estimates) -> dict:
    total = {"luts": 0, "ffs": 0, "bram36": 0.0, "dsps": 0}
    for estimate in estimates:
        for key in total:
            total[key] += estimate[key]
    total["bram36"] = round(total["bram36"], 1)
    return total


def estimate_shares(plans, timesteps: int, device: Device) -> dict:
    """The parts of the plan's total beside its layers: the top, and the converters of its edges."""
    return {"top": top_estimate(len(plans), device),
            "converters": _summed(c.estimate for c in edge_converters(plans, timesteps, device))}


def _widths(b) -> dict:
    return {"current_bits": b.current_bits, "accumulator_bits": b.accumulator_bits,
            "membrane_bits": b.membrane_bits, "logit_bits": b.logit_bits}


def _layer_plan(net: Network, i: int, lanes: int, source: str, traffic, bounds, device: Device,
                engines: dict[str, EngineSpec] | None = None, forced_depth: int | None = None) -> LayerPlan:
    """Layer i of `net` at `lanes` lanes on its engine; its estimate includes its input queues."""
    layer = net.layers[i]
    engine = (engines or {}).get(layer.name) or layer_engine(layer)
    geoms = layer_geometries(net, layer, engine)
    geom = geoms[0]
    widths = _widths(bounds[layer.name])
    inputs = layer_inputs(net, layer, engine, traffic, forced_depth)
    in_aw = (addr_width(int(np.prod(geom.in_shape))) + ladder_bits(inputs[0].ladder_steps)
             if engine.reads_events else 0)
    out_aw = event_width(layer) if engine.sends_events else 0
    t = traffic[layer.name]
    depth = source_queue_depth(net, layer.name, traffic, forced_depth) if engine.sends_events else 0
    ctx = EngineContext(projections=geoms, lanes=lanes, widths=widths, timesteps=net.timesteps, wbits=net.wbits,
                        traffic=t, device=device, in_queue_depth=inputs[0].queue_depth, in_addr_width=in_aw, out_addr_width=out_aw,
                        in_queue_depths=tuple(e.queue_depth for e in inputs),
                        in_addr_widths=tuple(e.addr_width for e in inputs), neuron=layer.neuron,
                        tables=layer.tables, weights=tuple(q.weight for q in layer.projections))
    check = getattr(engine, "check_context", None)
    if check is not None:
        check(ctx, f"layer {layer.name!r}: ")
    mems = engine.memories(ctx)
    return LayerPlan(
        name=layer.name, kind=layer.kind, engine=engine.name, neuron=layer.neuron,
        geometry=geom, lanes=lanes, valid_lanes=tuple(valid_lanes(geom.out_channels)),
        lanes_source=source, in_addr_width=in_aw, out_addr_width=out_aw,
        widths=widths, memories=mems, mappings=tuple(memory_mapping(m, device) for m in mems),
        queue_depth=depth, traffic=t,
        cycles=engine.cycles(ctx), estimate=engine.estimate(ctx, mems), geometries=geoms, inputs=inputs,
        family=engine.family)


def _build_layers(net: Network, lanes: dict[str, int], sources: dict[str, str], traffic, bounds, device: Device,
                  engines: dict[str, EngineSpec] | None = None, forced_depth: int | None = None) -> list[LayerPlan]:
    return [_layer_plan(net, i, lanes[layer.name], sources[layer.name], traffic, bounds, device, engines,
                        forced_depth)
            for i, layer in enumerate(net.layers)]


def _total(plans, timesteps: int, device: Device) -> dict:
    """The layers' estimates, the top's and the converters' (`estimate_shares`)."""
    return _summed([lp.estimate for lp in plans] + list(estimate_shares(plans, timesteps, device).values()))


def _fits(total: dict, capacity, budget: dict) -> bool:
    return all(total[key] <= budget[key] * getattr(capacity, key) for key in budget)


def _cost(lp: LayerPlan, capacity) -> float:
    """A layer's share of the board: its largest fraction of any budgeted resource."""
    return max(lp.estimate[key] / max(1e-9, RESOURCE_BUDGET[key] * getattr(capacity, key)) for key in RESOURCE_BUDGET)


def layer_options(net: Network, fixed: dict[str, int], families: dict[str, tuple[str, ...]], traffic, bounds,
                  device: Device, forced_depth: int | None = None) -> dict[str, list[LayerPlan]]:
    """Every (family, lanes) setting a layer may get: its candidate families at the user's
    lanes, or at each valid lane count up to MAX_AUTO_LANES. A family whose engine refuses the
    layer at some lanes (gen.engines' checks) simply offers fewer settings."""
    options = {}
    for i, layer in enumerate(net.layers):
        opts, refusals = [], []
        for family in families[layer.name]:
            engine = engine_spec(layer.kind, family, f"layer {layer.name!r}: ")
            lanes = [fixed[layer.name]] if layer.name in fixed else \
                [p for p in valid_lanes(layer.channels) if p <= MAX_AUTO_LANES]
            for p in lanes:
                try:
                    opts.append(_layer_plan(net, i, p, "user" if layer.name in fixed else "auto", traffic, bounds,
                                            device, {layer.name: engine}, forced_depth))
                except PlanError as exc:
                    refusals.append(str(exc))
        if not opts:
            raise PlanError(refusals[0])
        options[layer.name] = opts
    return options


def _pick(opts: list[LayerPlan], target: float, capacity) -> LayerPlan | None:
    """The cheapest setting that reaches `target` cycles per image: per family the fewest
    lanes that do, then the family that costs least (the default family on a tie)."""
    per_family = {}
    for lp in opts:
        if lp.cycles <= target and lp.family not in per_family:
            per_family[lp.family] = lp
    if not per_family:
        return None
    return min(per_family.values(), key=lambda lp: (_cost(lp, capacity), lp.family != DEFAULT_FAMILY))


def input_cycles(net: Network, first: LayerPlan) -> int:
    """Cycles per image of the pixel input into the first layer's engine: one AXI beat of 8
    pixels per cycle where the engine reads them so (hw.axi.AxisPixelBeatsIn), else one pixel
    per cycle (hw.axi.AxisPixelIn)."""
    pixels = int(np.prod(net.input_shape))
    wide = getattr(engine_spec(first.kind, first.family), "input_format", "pixels") == "pixels8"
    return -(-pixels // PIXELS_PER_BEAT) if wide else pixels


def _fastest_fitting(net: Network, options, board, floor_cycles: int):
    """(chosen settings, cycles per image): the fastest image rate whose estimate fits."""
    floor = max([floor_cycles] + [min(lp.cycles for lp in opts) for opts in options.values()])
    targets = sorted({lp.cycles for opts in options.values() for lp in opts if lp.cycles > floor} | {floor})
    for target in targets:
        chosen = [_pick(opts, target, board.capacity) for opts in options.values()]
        if _fits(_total(chosen, net.timesteps, board.device), board.capacity, RESOURCE_BUDGET):
            return chosen, max([input_cycles(net, chosen[0])] + [lp.cycles for lp in chosen])
    return None, None


def auto_choice(net: Network, board, options: dict[str, list[LayerPlan]], target_fps: float | None = None
                ) -> list[LayerPlan]:
    """The setting (engine family and lanes) of every layer.

    `options` hold every family that competes for a layer (candidate_families: every
    registered one that takes it, unless --engine fixed it). The slowest layer sets the
    rate, so a target rate (cycles per image) asks of each layer only its cheapest setting
    that reaches it: per family the fewest lanes, then the family
    whose estimate takes the smaller share of the board. The event family's cycles follow the
    measured firing (synaptic ops and events on held-out images), the dense family's are fixed
    by the geometry, so a layer that fires often goes dense. Without `target_fps` the targets
    tried are the cycles the settings reach, from the fastest down (never faster than the
    slowest layer can go nor than the input itself: input_cycles()); the first whose plan
    fits RESOURCE_BUDGET wins. With `target_fps`, the cheapest settings that reach it; PlanError
    naming the best achievable rate when no fitting plan does. If nothing fits, every layer
    gets its cheapest setting, and the build refuses the plan with the numbers.
    """
    # The input's floor: its fastest engine's (8 pixels per cycle into a dense encoding).
    floor_cycles = min(input_cycles(net, lp) for lp in next(iter(options.values())))
    clock = board.clock_mhz * 1e6
    if target_fps is not None:
        target = clock / target_fps
        chosen = [_pick(opts, target, board.capacity) for opts in options.values()]
        if None not in chosen and target >= input_cycles(net, chosen[0]) and \
                _fits(_total(chosen, net.timesteps, board.device), board.capacity, RESOURCE_BUDGET):
            return chosen
        best, cycles = _fastest_fitting(net, options, board, floor_cycles)
        best_text = f"{clock / cycles:,.0f} images/s ({cycles:,.0f} cycles/image)" if best else "nothing fits"
        raise PlanError(f"--target-fps {target_fps:g} cannot be met on the {board.part} ({board.name}) at "
                        f"{board.clock_mhz:g} MHz: the best that fits is {best_text}")
    best, _ = _fastest_fitting(net, options, board, floor_cycles)
    if best is not None:
        return best
    return [_pick(opts, math.inf, board.capacity) for opts in options.values()]


def family_reason(chosen: LayerPlan, options: list[LayerPlan], target: float) -> str:
    """One sentence: why this layer got its family (the other families' best at the same rate)."""
    fires = ""
    if chosen.traffic.measured and chosen.kind != "readout":
        fires = f"; it sends {chosen.traffic.events_out:,.0f} events/image (measured)"
    others = []
    for family in sorted({lp.family for lp in options} - {chosen.family}):
        mine = [lp for lp in options if lp.family == family]
        reach = [lp for lp in mine if lp.cycles <= target]
        if reach:
            o = reach[0]
            others.append(f"{family} would reach it at {o.lanes} lanes with {o.estimate['luts']:,.0f} LUTs, "
                          f"{o.estimate['bram36']:g} BRAM36")
        else:
            fastest = min(mine, key=lambda lp: lp.cycles)
            others.append(f"{family} needs at least {fastest.cycles:,.0f} cycles/image")
    what = (f"{chosen.family}: {chosen.cycles:,.0f} cycles/image at {chosen.lanes} lanes, "
            f"{chosen.estimate['luts']:,.0f} LUTs, {chosen.estimate['bram36']:g} BRAM36")
    return what + (f" ({'; '.join(others)})" if others else "") + fires


def candidate_families(net: Network, families: dict[str, str] | None) -> dict[str, tuple[str, ...]]:
    """Each layer's engine families to choose from: the user's (--engine), or every registered
    family of its kind that takes the layer (the registry's default family first, which must
    take it; another that refuses the layer's geometry is left out)."""
    families = families or {}
    unknown = sorted(set(families) - {layer.name for layer in net.layers})
    if unknown:
        raise PlanError(f"engine families name layers that do not exist: {unknown}; layers are "
                        f"{', '.join(layer.name for layer in net.layers)}")
    out = {}
    for layer in net.layers:
        if layer.name in families:
            engine = layer_engine(layer, families)
            layer_geometries(net, layer, engine)    # refuses what the user's family cannot take
            out[layer.name] = (engine.family,)
            continue
        names = []
        registered = sorted(engine_families(layer.kind), key=lambda f: f != DEFAULT_FAMILY)
        for family in registered:
            try:
                layer_geometries(net, layer, engine_spec(layer.kind, family))
            except PlanError:
                if family == DEFAULT_FAMILY:
                    raise
                continue
            names.append(family)
        out[layer.name] = tuple(names)
    return out


def make_plan(net: Network, board, lanes: dict[str, int] | None = None, images=None,
              families: dict[str, str] | None = None, queue_depths: int | None = None,
              target_fps: float | None = None) -> Plan:
    """The plan for `net` on `board`; `images` (uint8 [N,C,H,W]) measure the event traffic.

    `families`: the engine family of a layer (gen.engines) that the user fixes (--engine);
    the others are chosen (`auto_choice`). `target_fps`: the cheapest plan that reaches this
    many images/s (--target-fps), PlanError when none that fits does.
    `queue_depths`: one depth for every edge's queue instead of the measured ones (>= 2, the
    smallest the event queue takes: the deadlock argument's test runs at it).
    """
    forced = check_queue_depth(queue_depths)
    fixed = check_lanes(net, lanes or {})
    if target_fps is not None and (isinstance(target_fps, bool) or not isinstance(target_fps, (int, float))
                                   or not target_fps > 0):
        raise PlanError(f"--target-fps must be a positive number of images/s, not {target_fps!r}")
    # Every registered family competes for every layer the user did not fix (--engine): the
    # dense family's weight-aware estimate is checked against synthesis of whole builds
    # (benchmarks/fast_build.md, benchmarks/build_time.md), so the default may pick it.
    candidates = candidate_families(net, families)
    if net.readout.channels < 2:
        # The result's class is an argmax, and the AXI result (hw.axi.AxisResultOut) has K ≥ 2.
        raise PlanError(f"layer {net.readout.name!r}: a readout needs at least 2 classes (outputs), "
                        f"not {net.readout.channels}")
    bounds = network_bounds(net)
    readout_bits = bounds[net.readout.name].logit_bits
    if readout_bits > 32:
        raise PlanError(f"layer {net.readout.name!r}: logits need {readout_bits} bits, which must be <= 32 "
                        f"(they travel as int32); use fewer weight bits or timesteps")
    traffic = measure_traffic(net, images) if images is not None and len(images) else worst_case_traffic(net)
    options = layer_options(net, fixed, candidates, traffic, bounds, board.device, forced)
    chosen = auto_choice(net, board, options, target_fps)
    target = max([input_cycles(net, chosen[0])] + [lp.cycles for lp in chosen])
    engines = {lp.name: engine_spec(lp.kind, lp.family) for lp in chosen}
    sources = {name: "user" if name in fixed else "auto" for name in engines}
    plans = _build_layers(net, {lp.name: lp.lanes for lp in chosen}, sources, traffic, bounds, board.device, engines,
                          forced)
    plans = [replace(lp, family_source="user" if lp.name in (families or {}) else
                     ("auto" if len(candidates[lp.name]) > 1 else "default"),
                     family_reason="set by --engine" if lp.name in (families or {}) else
                     family_reason(lp, options[lp.name], target)) for lp in plans]
    notes = []
    if not next(iter(traffic.values())).measured:
        notes.append("no images given: cycles and queue depths assume every neuron spikes at every step")
    if forced is not None:
        notes.append(f"every queue forced to depth {forced}")
    if target_fps is not None:
        notes.append(f"--target-fps {target_fps:g}: the cheapest settings that reach it")
    return Plan(network=net.name, board=board.name, clock_mhz=board.clock_mhz, timesteps=net.timesteps,
                layers=tuple(plans), input_cycles=input_cycles(net, plans[0]),
                estimate=_total(plans, net.timesteps, board.device), notes=tuple(notes),
                converters=edge_converters(plans, net.timesteps, board.device),
                estimate_shares=estimate_shares(plans, net.timesteps, board.device))
