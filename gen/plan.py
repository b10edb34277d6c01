"""The hardware plan of a network: lanes, register widths, memories, queues and cycles.

    make_plan(net, board, lanes=None, event_images=None) -> Plan

* Lanes P per layer are the folding knob (docs/hardware.md): P must divide the layer's
  output channels. Given lanes are checked (an invalid P is an error listing the valid
  values, never snapped); the others are chosen by `auto_lanes`: the highest image rate
  whose resource estimate fits a budget of the board, each layer with the fewest lanes
  that keep up with the slowest one.
* Register widths come from `gen.bounds` (no overflow, no saturation).
* Memories as hw/ builds them: the lanes share each memory, a word holding one field per
  lane: weights (O/P)·C·k·k words, currents and membranes (O/P)·Ho·Wo words, the sweep's
  spike FIFO and the input queue. The estimate maps each one as yosys would
  (`memory_mapping`) and adds the engine's logic, fitted to synthesis.
* Cycles per image per layer: synaptic ops / P (events × fan-out, measured by the golden
  model on held-out images) + T LIF sweeps of (O/P)·Ho·Wo cycles, or one cycle per event
  sent if that is longer. The layers run as a pipeline, so the slowest layer sets the
  image rate.
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
# The share of each board resource the automatic choice may plan for (see auto_lanes).
RESOURCE_BUDGET = {"luts": 0.7, "ffs": 0.7, "bram36": 0.85, "dsps": 0.7}
# Keeps synthesis time and routing sane; a user may ask for more. The example's default
# build (conv2 and conv3 at 32) takes about 105 s on 2 idle cores; at 64 lanes their
# synthesis takes 1.5x as long, past two minutes for the whole build.
MAX_AUTO_LANES = 32
MIN_QUEUE_DEPTH = 16
# A queue also keeps the next layer busy while its producer is silent (an encoding layer
# accumulating the next image's pixels): on the example, 8192 instead of 4096 took the
# measured 84,328 cycles/image down to 78,581 (2 BRAM36 more per capped queue).
MAX_QUEUE_DEPTH = 8192
QUEUE_HEADROOM = 1.5         # over the measured peak events per step
SPIKE_FIFO_DEPTH = 16        # hw/sweep.py's FIFO of fired words

QUEUE_JUSTIFICATION = (
    "No overflow: every queue applies back-pressure (its input is not ready when full), so a "
    "producer stalls instead of dropping an event. No deadlock: the layers form a chain (one "
    "producer and one consumer per queue, no cycles); an engine needs only input from its own "
    "queue and room in the next one, and the last stage is drained by the result stream, so "
    "by induction from the sink every stage makes progress. The depth is a throughput knob: "
    "one that holds a step's peak events (measured on held-out images, with headroom) lets "
    "the producer finish its sweep without waiting for the consumer, and the consumer work "
    "on while its producer is silent.")


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
    """One memory of a layer engine as hw/ builds it: `depth` words of `width` bits.

    The P lanes share each memory, a word holding one field per lane (`per_lane`; the
    ArrayLayouts in hw/accumulator.py and hw/sweep.py), so synthesis tiles the whole
    P-field word across block RAMs rather than P narrow memories.
    """
    name: str
    depth: int
    width: int                  # bits per word, all lanes together
    per_lane: bool              # one field of width / lanes bits per lane
    rom: bool = False           # fixed contents (weights): no write port
    transparent: bool = False   # its read port sees the same cycle's write (forwarding)

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
        d["memories"] = [{**asdict(m), "bits": m.bits, "mapping": _mapping_json(memory_mapping(m))}
                         for m in self.memories]
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
    """Cycles per image: synaptic ops / P, then T sweeps of (O/P)·positions words (+1 per eos).

    A sweep hands out at most one event per cycle (hw/sweep.py's serialiser; it stops
    issuing words while its FIFO is full), so the T sweeps last at least as many cycles as
    the events the layer sends: with many lanes that, not the words, is the sweep's cost.
    """
    if kind == "readout":
        return traffic.sops / lanes + timesteps + geom.out_channels
    words = (geom.out_channels // lanes) * geom.out_positions
    return traffic.sops / lanes + max(timesteps * words, traffic.events_out) + timesteps


def readout_sum_width(widths: dict, timesteps: int) -> int:
    """The readout's current word: it sums T steps (hw/readout.py sizes it the same way)."""
    return max(widths["logit_bits"], widths["accumulator_bits"] + timesteps.bit_length()) + 1


def layer_memories(kind: str, geom: Geometry, lanes: int, wbits: int, widths: dict, timesteps: int,
                   in_queue_depth: int = 0, in_addr_width: int = 0, out_addr_width: int = 0) -> tuple[Memory, ...]:
    """The engine's memories as hw/ builds them (depths of at least 2 words, as there)."""
    groups = geom.out_channels // lanes
    mems = [Memory("weights", max(2, groups * geom.fan_in), lanes * wbits, True, rom=True)]
    if kind == "readout":
        mems.append(Memory("currents", max(2, groups), lanes * readout_sum_width(widths, timesteps), True,
                           transparent=True))
    else:
        positions = max(2, groups * geom.out_positions)
        mems.append(Memory("currents", positions, lanes * widths["accumulator_bits"], True, transparent=True))
        mems.append(Memory("membranes", positions, lanes * widths["membrane_bits"], True))
        # The sweep's FIFO of fired words: fire and sign bits per lane and the word's base address.
        mems.append(Memory("spikes", SPIKE_FIFO_DEPTH, 2 * lanes + out_addr_width, False))
    if in_queue_depth:
        mems.append(Memory("queue", in_queue_depth, in_addr_width + 2, False))   # addr, neg, eos
    return tuple(mems)


# ----------------------------------------------------------------- how yosys maps a memory
#
# BRAM binds first on the PYNQ-Z2, so the estimate follows yosys's own choice for every
# memory rather than a bits-per-BRAM rule: `memory_libmap` (passes/memory/memory_libmap.cc)
# prices each way to build a memory and takes the cheapest, and synth_xilinx -family xc7
# offers it soft logic, LUT RAM (techlibs/xilinx/lutrams_xc5v.txt) and block RAM
# (brams_xc4v.txt with HAS_SIZE_36, HAS_CASCADE, HAS_MIXWIDTH_SDP). For one aspect ratio
# (a data width `unit` and the words one primitive holds at it) the memory is cut into
# `chunks` address ranges whose bits are packed side by side into `replicas` primitives;
# the price is the primitives' cost plus half a unit per bit of the read mux and write
# demux over the chunks, plus 2 per emulated port feature. The numbers below are the
# libraries' costs; tests/test_build_plan.py checks the result against synthesis.


@dataclass(frozen=True)
class RamPrimitive:
    name: str
    bram36: float            # per replica: RAMB18 = 0.5, RAMB36 = 1, a cascaded pair = 2
    luts: int                # per replica, for LUT RAM
    cost: int                # the library's cost per replica
    widthscale: int          # the part of `cost` that scales with the bits used (LUT RAM)
    abits: int               # address bits at the narrowest width
    widths: tuple[int, ...]  # data widths, narrowest first; each halves the words
    byte: int                # write-enable granularity (0: the whole word)
    rom: bool                # may hold a ROM (memory_libmap prunes ROMs from LUT RAM)


RAM_PRIMITIVES = (
    RamPrimitive("RAMB18E1 TDP", 0.5, 0, 129, 0, 14, (1, 2, 4, 9, 18), 9, True),
    RamPrimitive("RAMB36E1 TDP", 1.0, 0, 257, 0, 15, (1, 2, 4, 9, 18, 36), 9, True),
    RamPrimitive("RAMB36E1 cascade", 2.0, 0, 513, 0, 16, (1, 2, 4, 9), 9, True),
    RamPrimitive("RAMB18E1 SDP", 0.5, 0, 129, 0, 14, (1, 2, 4, 9, 18, 36), 9, True),
    RamPrimitive("RAMB36E1 SDP", 1.0, 0, 257, 0, 15, (1, 2, 4, 9, 18, 36, 72), 9, True),
    RamPrimitive("RAM32M", 0.0, 4, 8, 7, 5, (6,), 0, False),
    RamPrimitive("RAM64M", 0.0, 4, 8, 7, 6, (3,), 0, False),
)
LOGIC_COST_ROM = 1 / 64      # gen/synth.py runs memory_libmap with -logic-cost-rom 0.015625
LOGIC_COST_RAM = 1.0         # memory_libmap's default
MUX_COST = 0.5               # per bit of read mux / write demux over the chunks
EMULATION_COST = 2           # per point of emulated port behaviour


@dataclass(frozen=True)
class MemoryMapping:
    """How yosys builds one memory, and what that takes."""
    primitive: str           # a RamPrimitive name, or "logic"
    unit: int                # data width per primitive
    chunks: int              # address ranges (read-muxed)
    replicas: int            # primitives
    cost: float
    bram36: float
    luts: int
    ffs: int


def _tilings(mem: Memory):
    """Every (primitive, width) way to build `mem` as memory_libmap prices it."""
    emulation = 1 + (3 if mem.transparent else 0)    # an unshared read port; forwarding logic
    for prim in RAM_PRIMITIVES:
        if mem.rom and not prim.rom:
            continue
        for i, unit in enumerate(prim.widths):
            byte = 1 if mem.rom else (prim.byte if 0 < prim.byte <= unit else unit)
            padded = -(-mem.width // byte) * byte             # write-enable groups are not split
            chunks = -(-mem.depth // (1 << (prim.abits - i)))
            replicas = -(-chunks * padded // unit)
            cost = (prim.cost - prim.widthscale) * replicas + (prim.widthscale * chunks * mem.width) // unit
            cost += MUX_COST * (chunks - 1) * mem.width
            cost += MUX_COST * chunks if chunks > 1 and not mem.rom else 0
            cost += EMULATION_COST * emulation
            yield prim, unit, chunks, replicas, cost


def memory_mapping(mem: Memory) -> MemoryMapping:
    """The cheapest way to build `mem` (soft logic, LUT RAM or block RAM) and its resources.

    LUTs and FFs beside the primitives: the read mux over the chunks (a LUT6 is a 4:1 mux)
    and its registered select; the bypass mux of a transparent read port; a LUT RAM's
    registered read address (its read is asynchronous). (The registers that hold a
    transparent port's write data are the engine's own pipeline registers: LOGIC_FFS.)
    """
    logic = int(mem.bits * (LOGIC_COST_ROM if mem.rom else LOGIC_COST_RAM))   # yosys compares it as an int
    best = min(_tilings(mem), key=lambda t: t[4], default=None)
    if best is None or logic <= best[4]:
        # A ROM becomes LUT6 tables (64 words each) behind its read register; a RAM, registers.
        tables = -(-mem.depth // 64)
        luts = mem.width * (tables + -(-(tables - 1) // 3)) if mem.rom else 2 * mem.bits
        ffs = mem.width if mem.rom else mem.bits
        return MemoryMapping("logic", mem.width, 1, 0, float(logic), 0.0, luts, ffs)
    prim, unit, chunks, replicas, cost = best
    luts = replicas * prim.luts + mem.width * -(-(chunks - 1) // 3) + (chunks if chunks > 1 else 0)
    ffs = addr_width(chunks) if chunks > 1 else 0
    if prim.luts:
        ffs += addr_width(mem.depth)
    if mem.transparent:
        luts += mem.width
    return MemoryMapping(prim.name, unit, chunks, replicas, cost, replicas * prim.bram36, luts, ffs)


def _mapping_json(m: MemoryMapping) -> dict:
    return {"primitive": m.primitive, "replicas": m.replicas, "bram36": m.bram36, "luts": m.luts}


def queue_depth(traffic: Traffic, neurons: int) -> int:
    """Holds a step's peak events with headroom, capped by what a step can ever send."""
    need = math.ceil(traffic.peak_events_step * QUEUE_HEADROOM) + 1
    cap = 1 << (neurons + 1 - 1).bit_length()     # a step sends at most `neurons` + 1 beats
    depth = 1 << max(0, need - 1).bit_length()
    return int(min(MAX_QUEUE_DEPTH, max(MIN_QUEUE_DEPTH, min(depth, cap))))


# Logic beside the memories, per engine: a fixed part (event decoder, walker, sweep and
# queue control, the readout's logits and argmax) and a part per lane that grows with the
# lane's register bits (weight, accumulator and membrane words: adders, LIF arithmetic,
# pipeline registers). Fitted to yosys synth_xilinx of the example's engines at P = 1 … 64
# (benchmarks/plan_calibration.md) and rounded up, so that it stays above synthesis.
LOGIC_LUTS = {"encoding": (850, 1.85), "spiking": (520, 2.35), "readout": (380, 1.2)}   # fixed, per lane bit
LOGIC_FFS = {"encoding": (500, 2.6), "spiking": (500, 3.1), "readout": (170, 2.05)}
# The top (AXI edges, register file, one event counter per layer): tern_top has no queue.
TOP_LUTS, TOP_FFS, TOP_PER_LAYER = 400, 500, 50


def _lane_bits(kind: str, widths: dict, timesteps: int, wbits: int) -> int:
    """A lane's register bits: its weight and current (and membrane) words."""
    if kind == "readout":
        return wbits + readout_sum_width(widths, timesteps)
    return wbits + widths["accumulator_bits"] + widths["membrane_bits"]


def decoder_dsps(geom: Geometry) -> int:
    """DSPs of a conv engine's event decoder: it divides the flat address by the plane size
    and the row width (multiplications by reciprocals) and multiplies the channel back; a
    dense decoder has no multiplier."""
    return 3 if geom.conv else 0


def layer_estimate(kind: str, geom: Geometry, lanes: int, widths: dict, memories, timesteps: int,
                   wbits: int) -> dict:
    """LUTs, FFs, BRAM36 and DSPs of one layer engine: its memories as yosys maps them
    (`memory_mapping`), its logic from LOGIC_LUTS/LOGIC_FFS, and its multipliers (the
    encoding layer multiplies pixels by weights in one DSP per lane)."""
    bits = lanes * _lane_bits(kind, widths, timesteps, wbits)
    maps = [memory_mapping(m) for m in memories]
    luts = LOGIC_LUTS[kind][0] + LOGIC_LUTS[kind][1] * bits + sum(m.luts for m in maps)
    ffs = LOGIC_FFS[kind][0] + LOGIC_FFS[kind][1] * bits + sum(m.ffs for m in maps)
    if kind == "readout":
        ffs += geom.out_channels * widths["logit_bits"]          # the logits are registers
    dsps = decoder_dsps(geom) + (lanes if kind == "encoding" else 0)
    return {"luts": math.ceil(luts), "ffs": math.ceil(ffs), "bram36": sum(m.bram36 for m in maps), "dsps": dsps}


def top_estimate(layers: int) -> dict:
    return {"luts": TOP_LUTS + TOP_PER_LAYER * layers, "ffs": TOP_FFS + TOP_PER_LAYER * layers,
            "bram36": 0.0, "dsps": 0}


def _widths(b) -> dict:
    return {"current_bits": b.current_bits, "accumulator_bits": b.accumulator_bits,
            "membrane_bits": b.membrane_bits, "logit_bits": b.logit_bits}


def _layer_plan(net: Network, i: int, lanes: int, source: str, traffic, bounds) -> LayerPlan:
    """Layer i of `net` at `lanes` lanes; its estimate includes its input queue."""
    layer = net.layers[i]
    geom = layer_geometry(net, layer)
    widths = _widths(bounds[layer.name])
    in_aw = 0 if i == 0 else addr_width(int(np.prod(geom.in_shape)))
    out_aw = 0 if layer.kind == "readout" else addr_width(layer.size)
    t = traffic[layer.name]
    depth = 0 if layer.kind == "readout" else queue_depth(t, layer.size)
    previous = net.layers[i - 1] if i else None
    in_depth = queue_depth(traffic[previous.name], previous.size) if previous is not None else 0
    mems = layer_memories(layer.kind, geom, lanes, net.wbits, widths, net.timesteps, in_depth, in_aw, out_aw)
    return LayerPlan(
        name=layer.name, kind=layer.kind, engine=ENGINES[layer.kind], neuron=layer.neuron,
        geometry=geom, lanes=lanes, valid_lanes=tuple(valid_lanes(geom.out_channels)),
        lanes_source=source, in_addr_width=in_aw, out_addr_width=out_aw,
        widths=widths, memories=mems, queue_depth=depth, traffic=t,
        cycles=layer_cycles(layer.kind, geom, t, lanes, net.timesteps),
        estimate=layer_estimate(layer.kind, geom, lanes, widths, mems, net.timesteps, net.wbits))


def _build_layers(net: Network, lanes: dict[str, int], sources: dict[str, str], traffic, bounds) -> list[LayerPlan]:
    return [_layer_plan(net, i, lanes[layer.name], sources[layer.name], traffic, bounds)
            for i, layer in enumerate(net.layers)]


def _total(plans) -> dict:
    total = top_estimate(len(plans))
    for lp in plans:
        for key in total:
            total[key] += lp.estimate[key]
    total["bram36"] = round(total["bram36"], 1)
    return total


def _fits(total: dict, capacity, budget: dict) -> bool:
    return all(total[key] <= budget[key] * getattr(capacity, key) for key in budget)


def auto_lanes(net: Network, board, fixed: dict[str, int], traffic, bounds) -> dict[str, int]:
    """The fewest lanes per layer that give the fastest image rate whose estimate fits the budget.

    The slowest layer sets the rate, so a target rate (cycles per image) asks of each layer
    only the fewest lanes that reach it: more would spend resources for nothing. The targets
    tried are the cycles the layers reach at their valid lane counts (at most MAX_AUTO_LANES;
    the user's layers keep theirs), from the fastest down, but never faster than the slowest
    layer can go nor than the input itself (one pixel per cycle); the first whose plan fits
    RESOURCE_BUDGET wins. If even the slowest target does not fit, every automatic layer gets
    its fewest lanes (1), and the build refuses the plan with the numbers.
    """
    options = {}
    for i, layer in enumerate(net.layers):
        if layer.name in fixed:
            options[layer.name] = [_layer_plan(net, i, fixed[layer.name], "user", traffic, bounds)]
        else:
            options[layer.name] = [_layer_plan(net, i, p, "auto", traffic, bounds)
                                   for p in valid_lanes(layer.channels) if p <= MAX_AUTO_LANES]
    # Cycles fall as lanes rise, so each layer's last option is its fastest.
    floor = max([int(np.prod(net.input_shape))] + [opts[-1].cycles for opts in options.values()])
    targets = sorted({lp.cycles for opts in options.values() for lp in opts if lp.cycles > floor} | {floor})
    for target in targets:
        chosen = [next(lp for lp in opts if lp.cycles <= target) for opts in options.values()]
        if _fits(_total(chosen), board.capacity, RESOURCE_BUDGET):
            return {lp.name: lp.lanes for lp in chosen}
    return {name: opts[0].lanes for name, opts in options.items()}


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
