"""A synchronous stream FIFO on `amaranth.lib.memory.Memory` (block or LUT RAM).

Full rate: one beat in and one out per cycle. The memory has a synchronous read port;
its data register is the output stage, so the capacity is `depth` + 1 beats.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


def check_depth(depth) -> int:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, not {depth!r}")
    return depth


class StreamFIFO(wiring.Component):
    """`w` (in) to `r` (out) with valid/ready; `level` counts the beats held."""

    def __init__(self, shape, depth: int):
        self.shape = shape
        self.depth = check_depth(depth)
        super().__init__({
            "w": In(stream.Signature(shape)),
            "r": Out(stream.Signature(shape)),
            "level": Out(range(depth + 2)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.shape, depth=self.depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        w_ptr, r_ptr = Signal(range(self.depth)), Signal(range(self.depth))
        stored = Signal(range(self.depth + 1))   # entries in the memory, not the output stage

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
        with m.If(push):
            m.d.sync += w_ptr.eq(Mux(w_ptr == self.depth - 1, 0, w_ptr + 1))
        with m.If(pop_mem):
            m.d.sync += r_ptr.eq(Mux(r_ptr == self.depth - 1, 0, r_ptr + 1))
        m.d.sync += stored.eq(stored + push - pop_mem)
        with m.If(pop_mem):
            m.d.sync += self.r.valid.eq(1)
        with m.Elif(self.r.ready):
            m.d.sync += self.r.valid.eq(0)
        return m
