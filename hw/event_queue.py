"""Ternary-spike event queue: the FIFO of events between two layer engines."""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.event import check_addr_width, event_layout, event_signature
from hw.fifo import StreamFIFO, check_depth


class EventQueue(wiring.Component):
    """FIFO of events: `w` (in) to `r` (out) with valid/ready back-pressure.

    Parameters: addr_width (event address bits), depth (memory entries, >= 2; block RAM
    or LUT RAM), binary (polarity always +: `neg` is forced to 0 on the way out).
    `level` counts the events held; the capacity is depth + 1.
    """

    def __init__(self, addr_width: int, depth: int = 512, binary: bool = False):
        self.addr_width = check_addr_width(addr_width)
        self.depth = check_depth(depth)
        if not isinstance(binary, bool):
            raise ValueError(f"binary must be True or False, not {binary!r}")
        self.binary = binary
        super().__init__({
            "w": In(event_signature(addr_width)),
            "r": Out(event_signature(addr_width)),
            "level": Out(range(depth + 2)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = StreamFIFO(event_layout(self.addr_width), self.depth)
        wiring.connect(m, wiring.flipped(self.w), fifo.w)
        m.d.comb += [
            self.r.valid.eq(fifo.r.valid), fifo.r.ready.eq(self.r.ready),
            self.r.payload.eq(fifo.r.payload), self.level.eq(fifo.level),
        ]
        if self.binary:
            m.d.comb += self.r.payload.neg.eq(0)
        return m
