"""Stream fork: one stream to N consumers, every beat to each of them, in order
(docs/hardware.md, "Graph-shaped hardware": a layer that feeds several layers).

    w ──► StreamFIFO (depth 2: `w.ready` is a register) ──► head ──┬──► out0
                                                                   ├──► out1
                                                                   └──► ...

The head beat is offered to every output at once; each output takes it on its own
handshake (an "eager" fork: a `taken` flag per output remembers who has it) and the head
is popped when the last output takes it, so one slow consumer never stalls the others
within a beat, and no output's valid waits for any ready. The input side is the FIFO's
registered `ready`: a consumer's ready reaches only the FIFO's read enable, never the
producer, so the fork adds no combinational path between a producer and its consumers.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fifo import StreamFIFO, check_depth
from hw.lif import check_int

FORK_BUFFER_DEPTH = 2


def output_name(i: int) -> str:
    return f"out{i}"


class StreamFork(wiring.Component):
    """`w` (in) to `out0` … `out{N-1}` (out), each output seeing every beat in order.
    Parameters: shape (the payload), outputs N >= 1, depth of the input buffer (>= 2;
    capacity depth + 1 beats, shared by all outputs)."""

    def __init__(self, shape, outputs: int, depth: int = FORK_BUFFER_DEPTH):
        self.shape = shape
        self.outputs = check_int("outputs", outputs, 1, "an integer >= 1")
        self.depth = check_depth(depth)
        super().__init__({
            "w": In(stream.Signature(shape)),
            **{output_name(i): Out(stream.Signature(shape)) for i in range(outputs)},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = StreamFIFO(self.shape, self.depth)
        wiring.connect(m, wiring.flipped(self.w), buffer.w)
        outs = [getattr(self, output_name(i)) for i in range(self.outputs)]
        taken = Signal(self.outputs)          # output i already has the head beat
        took = Cat(*(o.valid & o.ready for o in outs))
        has_it = taken | took
        pop = buffer.r.valid & (has_it == (1 << self.outputs) - 1)
        for i, o in enumerate(outs):
            m.d.comb += [o.valid.eq(buffer.r.valid & ~taken[i]), o.payload.eq(buffer.r.payload)]
        m.d.comb += buffer.r.ready.eq(pop)
        with m.If(pop):
            m.d.sync += taken.eq(0)
        with m.Else():
            m.d.sync += taken.eq(has_it)
        return m
