"""Converters between spike event streams (hw/event.py) and dense map streams
(hw/ternary_stream.py), so that a dense engine can sit between event-driven ones
(docs/hardware.md, "Dense streaming engines").

    EventsToMap: events of a step (any order) ──► map memory ──► H·W beats, then cleared
    MapToEvents: a beat ──► one event per non-zero channel (lowest channel first) ──► eos after the
                 step's last beat

Both count one [C,H,W] map per step; EventsToMap marks the image's last beat (`eoi`)
from its step counter, MapToEvents reads the beat's `eos`.
"""
from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.event import bits_for, event_signature
from hw.lif import check_int
from hw.ternary_stream import map_layout, map_signature


def check_map(channels, height, width):
    return check_int("channels", channels, 1), check_int("height", height, 1), check_int("width", width, 1)


class EventsToMap(wiring.Component):
    """`events_in` (Event, addr c·H·W + y·W + x) to `maps` (one beat per position).

    Per step: events are written into the map memory (one channel's 2 bits each) until the
    step's eos; then the H·W positions are read out in order and cleared behind the read, the
    input held meanwhile. Cycles per step: events + 2 + H·W (at full rate, no back-pressure)."""

    def __init__(self, channels: int, height: int, width: int, *, steps: int):
        self.channels, self.height, self.width = check_map(channels, height, width)
        self.steps = check_int("steps", steps, 1)
        self.positions = height * width
        self.addr_width = bits_for(channels * self.positions)
        self.out_layout = map_layout(channels)
        super().__init__({"events_in": In(event_signature(self.addr_width)),
                          "maps": Out(map_signature(channels))})

    def elaborate(self, platform):
        m = Module()
        C, HW, T = self.channels, self.positions, self.steps
        spikes_shape = self.out_layout["spikes"].shape
        m.submodules.map = mem = Memory(shape=spikes_shape, depth=max(2, HW), init=[])
        wp = mem.write_port(granularity=1)      # one channel per write enable
        rp = mem.read_port()
        pos_bits = max(1, (HW - 1).bit_length())

        emitting = Signal()
        t = Signal(range(max(2, T)))
        # Stage 1: the accepted beat, registered; its channel and position decoded from it.
        v1, eos1, neg1 = Signal(), Signal(), Signal()
        addr1 = Signal(self.addr_width)
        m.d.comb += self.events_in.ready.eq(~emitting & ~(v1 & eos1))
        take = self.events_in.valid & self.events_in.ready
        m.d.sync += v1.eq(take)
        with m.If(take):
            m.d.sync += [addr1.eq(self.events_in.payload.addr), eos1.eq(self.events_in.payload.eos),
                         neg1.eq(self.events_in.payload.neg)]
        # c = the number of channel bases c'·H·W (c' >= 1) at or below the address.
        channel = sum((addr1 >= c * HW).as_unsigned() for c in range(1, C)) if C > 1 else Const(0, 1)
        channel_s = Signal(range(max(2, C)))
        m.d.comb += channel_s.eq(channel)
        bases = Array(Const(c * HW, self.addr_width + 1) for c in range(C))
        position = Signal(pos_bits)
        m.d.comb += position.eq((addr1 - bases[channel_s])[:pos_bits])

        # Stage 2 of an event: its write. During the read-out: the clear behind the read.
        ra = Signal(range(max(2, HW)))
        out_valid, out_last = Signal(), Signal()
        issue = emitting & (~out_valid | self.maps.ready)
        write_event = v1 & ~eos1
        for c in range(C):
            m.d.comb += [wp.data[c].fire.eq(write_event), wp.data[c].neg.eq(write_event & neg1),
                         wp.en[c].eq(Mux(emitting, issue, write_event & (channel_s == c)))]
        m.d.comb += [wp.addr.eq(Mux(emitting, ra, position)), rp.addr.eq(ra), rp.en.eq(issue)]
        with m.If(v1 & eos1):
            m.d.sync += [emitting.eq(1), ra.eq(0)]
        with m.If(issue):
            m.d.sync += [out_valid.eq(1), out_last.eq(ra == HW - 1), ra.eq(ra + 1)]
            with m.If(ra == HW - 1):
                m.d.sync += emitting.eq(0)
        with m.Elif(self.maps.ready):
            m.d.sync += out_valid.eq(0)
        # The step counter moves when the step's last beat leaves.
        out_t = Signal.like(t)
        with m.If(out_valid & self.maps.ready & out_last):
            m.d.sync += out_t.eq(Mux(out_t == T - 1, 0, out_t + 1))
        beat = self.maps.payload
        m.d.comb += [self.maps.valid.eq(out_valid), beat.spikes.eq(rp.data), beat.eos.eq(out_last),
                     beat.eoi.eq(out_last & (out_t == T - 1))]
        return m


def lowest_set_bit(bits):
    """(any bit set, index of the lowest set bit) as a balanced tree of muxes, depth log2(n).

    Not a Switch with one wildcard case per bit: yosys's proc_rmdead compares every pair of
    such cases and runs out of memory at 32 channels (amaranth's Verilog conversion fails)."""
    n = len(bits)
    if n == 1:
        return bits[0], Const(0, 1)
    half = 1 << ((n - 1).bit_length() - 1)
    low_any, low_index = lowest_set_bit(bits[:half])
    high_any, high_index = lowest_set_bit(bits[half:])
    return low_any | high_any, Mux(low_any, low_index, high_index + half)


class MapToEvents(wiring.Component):
    """`maps_in` (one beat per position) to `events` (Event): one event per non-zero channel
    of a beat, lowest channel first, addr c·H·W + position; after a beat with `eos`, the eos
    event. Cycles per beat: max(1, non-zero channels + eos)."""

    def __init__(self, channels: int, height: int, width: int):
        self.channels, self.height, self.width = check_map(channels, height, width)
        self.positions = height * width
        self.addr_width = bits_for(channels * self.positions)
        super().__init__({"maps_in": In(map_signature(channels)),
                          "events": Out(event_signature(self.addr_width))})

    def elaborate(self, platform):
        m = Module()
        C, HW = self.channels, self.positions
        held, eos = Signal(), Signal()
        mask, negs = Signal(C), Signal(C)
        pos = Signal(range(max(2, HW)))          # the held beat's position
        next_pos = Signal(range(max(2, HW)))     # the next beat's: beats are counted, H·W per step
        lowest = Signal(range(max(2, C)))
        m.d.comb += lowest.eq(lowest_set_bit(mask)[1])
        rest = mask & (mask - 1)[:C]             # the mask without its lowest bit
        bases = Array(Const(c * HW, self.addr_width) for c in range(C))
        out = self.events.payload
        m.d.comb += [
            self.events.valid.eq(held & ((mask != 0) | eos)),
            out.eos.eq(mask == 0),
            out.addr.eq(Mux(mask == 0, 0, (bases[lowest] + pos)[:self.addr_width])),
            out.neg.eq(Mux(mask == 0, 0, negs.bit_select(lowest, 1))),
        ]
        sent = self.events.valid & self.events.ready
        # The beat is done with its last event (or its eos, or at once when it has none).
        finishing = sent & (rest == 0) & ((mask == 0) | ~eos)
        busy = held & ((mask != 0) | eos)
        m.d.comb += self.maps_in.ready.eq(~busy | finishing)
        with m.If(sent):
            with m.If(mask != 0):
                m.d.sync += mask.eq(rest)
            with m.Else():
                m.d.sync += eos.eq(0)
        with m.If(self.maps_in.valid & self.maps_in.ready):
            beat = self.maps_in.payload
            m.d.sync += [held.eq(1), eos.eq(beat.eos), pos.eq(next_pos),
                         next_pos.eq(Mux(next_pos == HW - 1, 0, next_pos + 1))]
            m.d.sync += [mask[c].eq(beat.spikes[c].fire) for c in range(C)]
            m.d.sync += [negs[c].eq(beat.spikes[c].fire & beat.spikes[c].neg) for c in range(C)]
        with m.Elif(finishing | ~busy):
            m.d.sync += held.eq(0)
        return m
