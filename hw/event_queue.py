"""Ternary-spike event queue: a FIFO of events between layers, in block/LUT RAM.

Full rate: one event in and one out per cycle. The memory has a synchronous read port;
its data register is the output stage, so the capacity is `depth` + 1 events.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.event import bits_for, check_addr_width, event_layout, event_signature


def check_depth(depth) -> int:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, not {depth!r}")
    return depth


class EventQueue(wiring.Component):
    """FIFO of events: `w` (in) to `r` (out) with valid/ready back-pressure.

    Parameters: addr_width (event address bits), depth (memory entries, >= 2),
    binary (polarity always +: `neg` is forced to 0 on the way out).
    `level` counts the events held (memory and output stage).
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
        layout = event_layout(self.addr_width)
        m.submodules.mem = mem = Memory(shape=layout, depth=self.depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()

        ptr = range(self.depth)
        w_ptr, r_ptr = Signal(ptr), Signal(ptr)
        stored = Signal(range(self.depth + 1))   # entries in the memory (not the output stage)

        push = self.w.valid & self.w.ready
        # Read the next entry whenever the output stage is empty or being emptied.
        pop_mem = (stored != 0) & (~self.r.valid | self.r.ready)

        m.d.comb += [
            self.w.ready.eq(stored != self.depth),
            wp.addr.eq(w_ptr), wp.data.eq(self.w.payload), wp.en.eq(push),
            rp.addr.eq(r_ptr), rp.en.eq(pop_mem),
            self.r.payload.eq(rp.data),
            self.level.eq(stored + self.r.valid),
        ]
        if self.binary:
            m.d.comb += self.r.payload.neg.eq(0)

        with m.If(push):
            m.d.sync += w_ptr.eq(_wrap(w_ptr, self.depth))
        with m.If(pop_mem):
            m.d.sync += r_ptr.eq(_wrap(r_ptr, self.depth))
        m.d.sync += stored.eq(stored + push - pop_mem)
        with m.If(pop_mem):
            m.d.sync += self.r.valid.eq(1)
        with m.Elif(self.r.ready):
            m.d.sync += self.r.valid.eq(0)
        return m


def _wrap(pointer, depth):
    """pointer + 1 modulo depth."""
    return Mux(pointer == depth - 1, 0, pointer + 1)
