"""Converter testbenches: events -> map -> events and map -> events -> map, each a chain of
hw.dense_convert's two units, with random idle input and back-pressure. The first checks
every step's events as a set (order within a step is free) and its one eos; the second
every beat exactly (spikes, eos, eoi)."""
import cocotb
import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dense_convert import EventsToMap, MapToEvents
from hw.event import event_signature
from hw.ternary_stream import map_beats, map_signature, word_beat
from sim.tb.spikes import random_spikes
from sim.tb.streams import Bench, pack, payload_layout, unpack


class EventRoundTrip(wiring.Component):
    """events_in -> EventsToMap -> MapToEvents -> events."""

    def __init__(self, channels, height, width, steps):
        self.to_map = EventsToMap(channels, height, width, steps=steps)
        self.to_events = MapToEvents(channels, height, width)
        width_bits = self.to_map.addr_width
        super().__init__({"events_in": In(event_signature(width_bits)), "events": Out(event_signature(width_bits))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.to_map, m.submodules.to_events = self.to_map, self.to_events
        wiring.connect(m, wiring.flipped(self.events_in), self.to_map.events_in)
        wiring.connect(m, self.to_map.maps, self.to_events.maps_in)
        wiring.connect(m, self.to_events.events, wiring.flipped(self.events))
        return m


class MapRoundTrip(wiring.Component):
    """maps_in -> MapToEvents -> EventsToMap -> maps."""

    def __init__(self, channels, height, width, steps):
        self.to_events = MapToEvents(channels, height, width)
        self.to_map = EventsToMap(channels, height, width, steps=steps)
        super().__init__({"maps_in": In(map_signature(channels)), "maps": Out(map_signature(channels))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.to_map, m.submodules.to_events = self.to_map, self.to_events
        wiring.connect(m, wiring.flipped(self.maps_in), self.to_events.maps_in)
        wiring.connect(m, self.to_events.events, self.to_map.events_in)
        wiring.connect(m, self.to_map.maps, wiring.flipped(self.maps))
        return m


def build(p):
    chain = EventRoundTrip if p["direction"] == "events" else MapRoundTrip
    return chain(p["channels"], p["height"], p["width"], p["steps"])


def random_images(rng, p):
    size = p["channels"] * p["height"] * p["width"]
    return [np.array([random_spikes(rng, size, p.get("binary", False)) for _ in range(p["steps"])])
            for _ in range(p["images"])]


@cocotb.test()
async def events_round_trip(dut):
    bench = Bench(dut)
    p = bench.params
    dut_model = build(p)
    layout = payload_layout(dut_model, "events_in")
    source, sink = bench.random_streams("events_in", "events")
    await bench.reset()
    expected = []
    for image in random_images(bench.rng, p):
        for spikes in image:
            order = [int(i) for i in np.flatnonzero(spikes)]
            bench.rng.shuffle(order)
            for i in order:
                source.send(pack(layout, {"addr": i, "neg": int(spikes[i] < 0), "eos": 0}))
            source.send(pack(layout, {"eos": 1}))
            expected.append(sorted((i, int(spikes[i] < 0)) for i in order))
    eos_count = lambda: sum(unpack(layout, w)["eos"] for w in sink.received)
    await bench.run_until(lambda: eos_count() == len(expected), 100_000, "every step's eos")
    await bench.run_for(30)
    steps, current = [], []
    for word in sink.received:
        event = unpack(layout, word)
        if event["eos"]:
            steps.append(sorted(current))
            current = []
        else:
            current.append((event["addr"], event["neg"]))
    assert current == [] and steps == expected, f"events differ (seed {bench.seed})"


@cocotb.test()
async def maps_round_trip(dut):
    bench = Bench(dut)
    p = bench.params
    source, sink = bench.random_streams("maps_in", "maps")
    await bench.reset()
    shape = (p["steps"], p["channels"], p["height"], p["width"])
    expected = []
    for image in random_images(bench.rng, p):
        beats = map_beats(image.reshape(shape))
        for word in beats:
            source.send(word)
        expected += beats
    await bench.run_until(lambda: len(sink.received) >= len(expected), 100_000, "every beat")
    await bench.run_for(30)
    assert len(sink.received) == len(expected)
    for i, (got, want) in enumerate(zip(sink.received, expected)):
        assert got == want, f"beat {i}: {word_beat(got, p['channels'])} != {word_beat(want, p['channels'])}"
