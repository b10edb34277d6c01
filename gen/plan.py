"""The hardware plan of a network: lanes, register widths, memories, queues and cycles.

    make_plan(net, board, lanes=None, event_images=None) -> Plan

* Lanes P per layer are the folding knob (docs/hardware.md): P must divide the layer's
  output channels. Given lanes are checked (an invalid P is an error listing the valid
  values, never snapped); the others are chosen by `auto_lanes`, which balances the
  pipeline: it raises the bottleneck layer's P while the estimated resources stay
  within a budget of the board and the bottleneck is slower than the input itself.
* Register widths come from `gen.bounds` (no overflow, no saturation).
* Memory layout per docs/hardware.md: per lane, a current memory of (O/P)·Ho·Wo words and
  a weight memory of (O/P)·C·k·k words.
* Cycles per image per layer: synaptic ops / P (events × fan-out, measured by the golden
  model on held-out images) + T LIF sweeps of (O/P)·Ho·Wo cycles. The layers run as a
  pipeline, so the slowest layer sets the image rate.
* Event queues: the depth of each inter-layer queue, with the argument for why it can
  neither overflow nor deadlock (`QUEUE_JUSTIFICATION`).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .bounds import network_bounds
from .ir import INPUT, Conv2d, Dense, Network

log = logging.getLogger(__name__)

ENGINES = {"encoding": "EncodingLayer", "spiking": "SpikingLayer", "readout": "ReadoutLayer"}
RESOURCE_BUDGET = 0.7        # the automatic choice leaves 30 % of the board for the rest
MAX_AUTO_LANES = 16          # keeps synthesis time and routing sane; a user may ask for more
MIN_QUEUE_DEPTH = 16
MAX_QUEUE_DEPTH = 4096
QUEUE_HEADROOM = 1.5         # over the measured peak events per step
BRAM36_BITS = 36 * 1024
LUTRAM_MAX_BITS = 2048       # smaller memories go to distributed RAM in the estimate

QUEUE_JUSTIFICATION = (
    "No overflow: every queue applies back-pressure (its input is not ready when full), so a "
    "producer stalls instead of dropping an event. No deadlock: the layers form a chain (one "
    "producer and one consumer per queue, no cycles); an engine needs only input from its own "
    "queue and room in the next one, and the last stage is drained by the result stream, so "
    "by induction from the sink every stage makes progress. The depth is a throughput knob: "
    "one that holds a step's peak events (measured on held-out images, with headroom) lets "
    "the producer finish its sweep without waiting for the consumer.")


class PlanError(ValueError):
    """A folding setting or a network that the hardware cannot take (message is one line)."""


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


@dataclass(frozen=True)
class Geometry:
    """Projection geometry in plain ints (what hw.geometry takes)."""
    conv: bool
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: int = 1
    stride: int = 1
    padding: int = 0

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    @property
    def out_positions(self) -> int:
        return int(np.prod(self.out_shape[1:])) if self.conv else 1

    @property
    def fan_in(self) -> int:
        return self.in_shape[0] * self.kernel * self.kernel if self.conv else int(np.prod(self.in_shape))


def layer_geometry(net: Network, layer) -> Geometry:
    """The single projection's geometry; refuses what the engines cannot take."""
    if len(layer.projections) != 1:
        sources = [p.source for p in layer.projections]
        raise PlanError(f"layer {layer.name!r}: the hardware takes exactly one projection per layer "
                        f"(conv2d or dense from the previous layer), not {len(sources)} from {sources}")
    p = layer.projections[0]
    previous = INPUT if layer is net.layers[0] else net.layers[net.layers.index(layer) - 1].name
    if p.source != previous:
        raise PlanError(f"layer {layer.name!r}: the hardware is a chain, so its projection must come "
                        f"from {previous!r}, not {p.source!r}")
    src = net.source_shape(p.source)
    if isinstance(p.op, Conv2d):
        if any(p.op.pad_value):
            raise PlanError(f"layer {layer.name!r}: padding with non-zero pixels is not supported by the "
                            f"hardware (pad_value {list(p.op.pad_value)}); train without input normalisation")
        return Geometry(True, tuple(src), tuple(layer.shape), p.op.kernel, p.op.stride, p.op.padding)
    if isinstance(p.op, Dense):
        return Geometry(False, tuple(src), tuple(layer.shape))
    raise PlanError(f"layer {layer.name!r}: op {type(p.op).__name__} is not supported by the hardware; "
                    f"supported: conv2d, dense")


def addr_width(count: int) -> int:
    return max(1, (max(1, count) - 1).bit_length())


@dataclass(frozen=True)
class Traffic:
    """Mean per image, measured by the golden model (or the worst case without images)."""
    events_out: float          # spikes this layer sends, summed over T
    peak_events_step: int      # max over images and steps
    sops: float                # synaptic ops into this layer, summed over T
    measured: bool


def measure_traffic(net: Network, images) -> dict[str, Traffic]:
    """Run the golden model on `images` and count events and synaptic ops per layer."""
    from .golden import fanout, run

    result = run(net, images, record=True)
    traffic = {}
    enc = net.layers[0]
    p = enc.projections[0]
    fan = fanout(p.op, p.weight, net.input_shape, enc.shape).reshape(-1)
    nonzero = (np.asarray(images).reshape(len(images), -1) != 0).astype(np.int64)
    enc_sops = float((nonzero @ fan).mean())
    for layer in net.layers:
        sops = enc_sops if layer.kind == "encoding" else float(result.sops[layer.name].sum(axis=1).mean())
        if layer.kind == "readout":
            traffic[layer.name] = Traffic(0.0, 0, sops, True)
            continue
        events = result.events[layer.name]
        traffic[layer.name] = Traffic(float(events.sum(axis=1).mean()), int(events.max()), sops, True)
    return traffic


def worst_case_traffic(net: Network) -> dict[str, Traffic]:
    """Every neuron spiking at every step: the bound when no images are given."""
    from .golden import fanout

    traffic, T = {}, net.timesteps
    for i, layer in enumerate(net.layers):
        p = layer.projections[0]
        src = net.source_shape(p.source)
        sops = float(fanout(p.op, p.weight, src, layer.shape).sum())
        sops = sops if layer.kind == "encoding" else sops * T
        events = 0 if layer.kind == "readout" else layer.size
        traffic[layer.name] = Traffic(float(events * T), events, sops, False)
    return traffic


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Memory:
    name: str
    depth: int
    width: int
    per_lane: bool

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass(frozen=True)
class LayerPlan:
    name: str
    kind: str
    engine: str
    neuron: str | None
    geometry: Geometry
    lanes: int
    valid_lanes: tuple[int, ...]
    lanes_source: str                       # "user" or "auto"
    in_addr_width: int                      # events into this layer (0 for the encoding layer)
    out_addr_width: int                     # events out (0 for the readout)
    widths: dict                            # current/accumulator/membrane/logit bits
    memories: tuple[Memory, ...]
    queue_depth: int                        # queue after this layer (0 for the readout)
    traffic: Traffic
    cycles: float                           # per image
    estimate: dict                          # luts, ffs, bram36, dsps

    def to_json(self) -> dict:
        d = asdict(self)
        d["geometry"] = {**asdict(self.geometry), "in_shape": list(self.geometry.in_shape),
                         "out_shape": list(self.geometry.out_shape)}
        d["valid_lanes"] = list(self.valid_lanes)
        d["memories"] = [{**asdict(m), "bits": m.bits} for m in self.memories]
        return d


@dataclass(frozen=True)
class Plan:
    network: str
    board: str
    clock_mhz: float
    timesteps: int
    layers: tuple[LayerPlan, ...]
    input_cycles: int                       # pixels per image: the input's own rate
    estimate: dict                          # totals, with the top's share
    queue_justification: str = QUEUE_JUSTIFICATION
    notes: tuple[str, ...] = field(default_factory=tuple)

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

    def to_json(self) -> dict:
        return {"network": self.network, "board": self.board, "clock_mhz": self.clock_mhz,
                "timesteps": self.timesteps, "input_cycles": self.input_cycles,
                "cycles_per_image": self.cycles_per_image, "images_per_second": self.images_per_second,
                "latency_cycles": self.latency_cycles, "bottleneck": self.bottleneck.name,
                "estimate": self.estimate, "queue_justification": self.queue_justification,
                "notes": list(self.notes), "layers": [lp.to_json() for lp in self.layers]}


def layer_cycles(kind: str, geom: Geometry, traffic: Traffic, lanes: int, timesteps: int) -> float:
    """Cycles per image: synaptic ops / P + T sweeps of (O/P)·positions (+1 per eos)."""
    sweep = (geom.out_channels // lanes) * geom.out_positions
    if kind == "readout":
        return traffic.sops / lanes + timesteps + geom.out_channels
    return traffic.sops / lanes + timesteps * (sweep + 1)


def layer_memories(kind: str, geom: Geometry, lanes: int, wbits: int, widths: dict) -> tuple[Memory, ...]:
    groups = geom.out_channels // lanes
    mems = [Memory("weights", groups * geom.fan_in, wbits, True)]
    if kind == "readout":
        mems.append(Memory("logits", groups, widths["logit_bits"], True))
    else:
        positions = groups * geom.out_positions
        mems.append(Memory("currents", positions, widths["accumulator_bits"], True))
        mems.append(Memory("membranes", positions, widths["membrane_bits"], True))
    return tuple(mems)


BRAM18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))  # (width, depth)


def _memory_cost(mem: Memory) -> tuple[float, float]:
    """(bram36, luts) of one memory: small ones in LUT RAM (64 bits per LUT), others in the
    cheapest tiling of BRAM18 halves."""
    if mem.bits <= LUTRAM_MAX_BITS:
        return 0.0, float(math.ceil(mem.bits / 64))
    halves = min(math.ceil(mem.width / w) * math.ceil(mem.depth / d) for w, d in BRAM18_SHAPES)
    return halves / 2, 0.0


def layer_estimate(kind: str, lanes: int, memories, widths: dict, queue_depth: int, out_addr_width: int) -> dict:
    """A rough resource estimate for the automatic lane choice (synthesis decides fit)."""
    acc = widths.get("accumulator_bits") or 16
    mem_bits = widths.get("membrane_bits") or widths.get("logit_bits") or 16
    luts = lanes * (80 + 4 * acc + 4 * mem_bits) + 150
    ffs = lanes * (2 * acc + 2 * mem_bits + 40) + 150
    bram = 0.0
    for mem in memories:
        b, l = _memory_cost(mem)
        bram += b * (lanes if mem.per_lane else 1)
        luts += l * (lanes if mem.per_lane else 1)
    if queue_depth:
        b, l = _memory_cost(Memory("queue", queue_depth, out_addr_width + 2, False))
        bram, luts = bram + b, luts + l
    dsps = lanes if kind == "encoding" else 0
    return {"luts": int(luts), "ffs": int(ffs), "bram36": bram, "dsps": dsps}


def queue_depth(traffic: Traffic, neurons: int) -> int:
    """Holds a step's peak events with headroom, capped by what a step can ever send."""
    need = math.ceil(traffic.peak_events_step * QUEUE_HEADROOM) + 1
    cap = 1 << (neurons + 1 - 1).bit_length()     # a step sends at most `neurons` + 1 beats
    depth = 1 << max(0, need - 1).bit_length()
    return int(min(MAX_QUEUE_DEPTH, max(MIN_QUEUE_DEPTH, min(depth, cap))))


# The top (AXI blocks, counters, register file) in the same rough units.
TOP_ESTIMATE = {"luts": 900, "ffs": 1400, "bram36": 0.0, "dsps": 0}


def _widths(b) -> dict:
    return {"current_bits": b.current_bits, "accumulator_bits": b.accumulator_bits,
            "membrane_bits": b.membrane_bits, "logit_bits": b.logit_bits}


def _build_layers(net: Network, lanes: dict[str, int], sources: dict[str, str], traffic, bounds) -> list[LayerPlan]:
    plans = []
    for i, layer in enumerate(net.layers):
        geom = layer_geometry(net, layer)
        widths = _widths(bounds[layer.name])
        p = lanes[layer.name]
        in_aw = 0 if i == 0 else addr_width(int(np.prod(geom.in_shape)))
        out_aw = 0 if layer.kind == "readout" else addr_width(layer.size)
        t = traffic[layer.name]
        depth = 0 if layer.kind == "readout" else queue_depth(t, layer.size)
        mems = layer_memories(layer.kind, geom, p, net.wbits, widths)
        plans.append(LayerPlan(
            name=layer.name, kind=layer.kind, engine=ENGINES[layer.kind], neuron=layer.neuron,
            geometry=geom, lanes=p, valid_lanes=tuple(valid_lanes(geom.out_channels)),
            lanes_source=sources[layer.name], in_addr_width=in_aw, out_addr_width=out_aw,
            widths=widths, memories=mems, queue_depth=depth, traffic=t,
            cycles=layer_cycles(layer.kind, geom, t, p, net.timesteps),
            estimate=layer_estimate(layer.kind, p, mems, widths, depth, out_aw)))
    return plans


def _total(plans) -> dict:
    total = dict(TOP_ESTIMATE)
    for lp in plans:
        for key in total:
            total[key] += lp.estimate[key]
    total["bram36"] = round(total["bram36"], 1)
    return total


def _fits(total: dict, capacity, budget: float) -> bool:
    return (total["luts"] <= budget * capacity.luts and total["ffs"] <= budget * capacity.ffs
            and total["bram36"] <= budget * capacity.bram36 and total["dsps"] <= budget * capacity.dsps)


def auto_lanes(net: Network, board, fixed: dict[str, int], traffic, bounds) -> dict[str, int]:
    """Raise the bottleneck's lanes while the estimate fits the budget and it is slower than the input."""
    lanes = {layer.name: fixed.get(layer.name, 1) for layer in net.layers}
    sources = {name: "user" if name in fixed else "auto" for name in lanes}
    input_cycles = int(np.prod(net.input_shape))
    while True:
        plans = _build_layers(net, lanes, sources, traffic, bounds)
        candidates = sorted((lp for lp in plans if lp.name not in fixed), key=lambda lp: -lp.cycles)
        worst = max(plans, key=lambda lp: lp.cycles)
        if worst.cycles <= input_cycles or not candidates or candidates[0].name != worst.name:
            return lanes
        lp = candidates[0]
        higher = [p for p in lp.valid_lanes if p > lp.lanes and p <= MAX_AUTO_LANES]
        if not higher:
            return lanes
        trial = dict(lanes, **{lp.name: higher[0]})
        if not _fits(_total(_build_layers(net, trial, sources, traffic, bounds)), board.capacity, RESOURCE_BUDGET):
            return lanes
        lanes = trial


def make_plan(net: Network, board, lanes: dict[str, int] | None = None, images=None) -> Plan:
    """The plan for `net` on `board`; `images` (uint8 [N,C,H,W]) measure the event traffic."""
    fixed = check_lanes(net, lanes or {})
    for layer in net.layers:
        layer_geometry(net, layer)       # refuse unsupported layers before any work
    bounds = network_bounds(net)
    readout_bits = bounds[net.readout.name].logit_bits
    if readout_bits > 32:
        raise PlanError(f"layer {net.readout.name!r}: logits need {readout_bits} bits, which must be <= 32 "
                        f"(they travel as int32); use fewer weight bits or timesteps")
    traffic = measure_traffic(net, images) if images is not None and len(images) else worst_case_traffic(net)
    chosen = auto_lanes(net, board, fixed, traffic, bounds)
    sources = {name: "user" if name in fixed else "auto" for name in chosen}
    plans = _build_layers(net, chosen, sources, traffic, bounds)
    notes = []
    if not next(iter(traffic.values())).measured:
        notes.append("no images given: cycles and queue depths assume every neuron spikes at every step")
    return Plan(network=net.name, board=board.name, clock_mhz=board.clock_mhz, timesteps=net.timesteps,
                layers=tuple(plans), input_cycles=int(np.prod(net.input_shape)), estimate=_total(plans),
                notes=tuple(notes))
