"""The cost of the stream converters the top puts where a dense engine and an event engine meet.

    converter_between(producer, consumer) -> "EventsToMap" | "MapToEvents" | None   (EngineSpecs)
    converter_estimate(name, (C, H, W), steps, device) -> {luts, ffs, bram36, dsps}

hw.top.TernTop gives every edge whose producer sends events and whose consumer reads maps an
`EventsToMap(C, H, W, steps=T)` and a `SkidBuffer` behind it, and every edge whose producer
sends maps and whose consumer reads events a `MapToEvents(C, H, W)` (hw/dense_convert.py;
one per edge, (C, H, W) the producer's neurons). The engines' estimates do not hold them, so
the plan adds them to its total (gen.plan).

The model follows the hardware, its coefficients in the device description
(`device.logic_of("EventsToMap")` etc.; Xilinx 7-series: gen/boards/xc7.py), fitted to yosys
synth_xilinx of each converter alone and rounded up (benchmarks/converters.py measures them
and writes benchmarks/converters.md with the estimate beside each):

* EventsToMap: its map memory (H·W words of 2C bits, one write enable per channel's 2 bits),
  priced as yosys maps it (gen.engines.memory: block RAM, LUT RAM or logic; a LUT RAM's read
  data is registered in flip-flops); the channel decode of an event address (C − 1
  comparisons against c·H·W, their sum, the channel's base subtracted: ABC shares the
  comparisons, so what grows is per channel and position bit); the registered event, the
  read-out counter and the step counter.
* SkidBuffer: two registers of the beat (2C spike bits, eos, eoi) and a mux per bit (exact).
* MapToEvents: the held beat (fire and sign per channel), the lowest set channel (a tree),
  the base of that channel added to the position: per channel (ABC's mapping of it varies up
  to ~1.7x between two runs of one design, so the fit follows the worst); the two position
  counters.
"""
from __future__ import annotations

import math

from gen.boards.device import Device
from gen.engines.memory import Memory, addr_width, memory_mapping

EVENTS_TO_MAP = "EventsToMap"       # hw.dense_convert class names, as hw.top inserts them
MAP_TO_EVENTS = "MapToEvents"
SKID_BUFFER = "SkidBuffer"


def stream_formats(spec) -> tuple[str, str]:
    """(what a layer's engine reads, what it sends) past the first layer, as hw.top names them
    (gen.backend.emit.stream_formats adds the first layer's pixels): "map" for a dense
    family's engine (`stream_format`), else "events"; a readout sends its "result"."""
    dense = getattr(spec, "stream_format", "events") == "map"
    sends = "events" if spec.sends_events else ("map" if dense else "result")
    return ("map" if dense else "events"), sends


def map_shape(shape) -> tuple[int, int, int]:
    """(C, H, W) of a layer's neurons; a vector [C] is a 1×1 map (the shape a converter sees)."""
    shape = tuple(int(s) for s in shape)
    return shape + (1,) * (3 - len(shape))


def converter_between(producer, consumer) -> str | None:
    """The converter hw.top puts on an edge from `producer`'s engine to `consumer`'s (their
    EngineSpecs), or None where the consumer reads what the producer sends."""
    sends, reads = stream_formats(producer)[1], stream_formats(consumer)[0]
    if sends == "events" and reads == "map":
        return EVENTS_TO_MAP
    if sends == "map" and reads == "events":
        return MAP_TO_EVENTS
    return None


def map_memory(channels: int, height: int, width: int) -> Memory:
    """EventsToMap's map memory: H·W words of C (fire, neg) pairs, written one channel at a time."""
    return Memory("map", max(2, height * width), 2 * channels, False, write_group=2)


def _event_bits(channels: int, height: int, width: int) -> tuple[int, int]:
    """(event address bits, position bits) as hw.dense_convert sizes them."""
    return addr_width(channels * height * width), addr_width(height * width)


def events_to_map_estimate(channels: int, height: int, width: int, steps: int, device: Device) -> dict:
    """EventsToMap and the skid buffer behind it."""
    fit = device.logic_of(EVENTS_TO_MAP)
    aw, pos = _event_bits(channels, height, width)
    mapping = memory_mapping(map_memory(channels, height, width), device)
    luts = fit["fixed_luts"] + channels * (fit["channel_luts"] + fit["channel_position_bit_luts"] * pos) + mapping.luts
    # The registered event (address, neg, eos, valid), the read-out counter, the step counter,
    # the beat's valid and last; a LUT RAM's (or logic's) read data register.
    ffs = aw + pos + fit["fixed_ffs"] + 2 * addr_width(steps) + mapping.ffs
    if not mapping.bram36:
        ffs += 2 * channels
    skid = skid_estimate(channels, device)
    return {"luts": math.ceil(luts) + skid["luts"], "ffs": math.ceil(ffs) + skid["ffs"],
            "bram36": mapping.bram36, "dsps": 0}


def skid_estimate(channels: int, device: Device) -> dict:
    """hw.skid.SkidBuffer of a map beat (hw.ternary_stream.map_layout: 2C spike bits, eos, eoi)."""
    fit = device.logic_of(SKID_BUFFER)
    bits = 2 * channels + 2
    return {"luts": math.ceil(fit["fixed_luts"] + fit["bit_luts"] * bits),
            "ffs": math.ceil(fit["fixed_ffs"] + fit["bit_ffs"] * bits), "bram36": 0.0, "dsps": 0}


def map_to_events_estimate(channels: int, height: int, width: int, device: Device) -> dict:
    fit = device.logic_of(MAP_TO_EVENTS)
    pos = _event_bits(channels, height, width)[1]
    luts = fit["fixed_luts"] + fit["channel_luts"] * channels
    # The held beat's fire and sign bits, its position and the next one's, held and eos.
    ffs = 2 * channels + 2 * pos + fit["fixed_ffs"]
    return {"luts": math.ceil(luts), "ffs": math.ceil(ffs), "bram36": 0.0, "dsps": 0}


def converter_estimate(name: str, shape: tuple[int, int, int], steps: int, device: Device) -> dict:
    """LUTs, FFs, BRAM36 and DSPs of converter `name` for maps of `shape` (C, H, W)."""
    channels, height, width = shape
    if name == EVENTS_TO_MAP:
        return events_to_map_estimate(channels, height, width, steps, device)
    if name == MAP_TO_EVENTS:
        return map_to_events_estimate(channels, height, width, device)
    raise ValueError(f"converter must be {EVENTS_TO_MAP} or {MAP_TO_EVENTS}, not {name!r}")
