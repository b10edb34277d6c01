"""Skid buffer: a 2-entry register slice on a valid/ready stream (issue 14, "Timing").

    w ──► [skid] ──► [main] ──► r

`r.valid`, `r.payload` and `w.ready` are all registers, so neither the consumer's ready
nor the producer's valid and payload pass through combinationally: a chain of engines
joined by skid buffers has no ready path longer than one engine's own logic, and no
payload (e.g. a memory's read data) feeds the next engine's logic in the same cycle.

Full rate: with `r.ready` high a beat goes in and one comes out every cycle; the second
entry (`skid`) catches the beat the producer sends in the cycle the consumer stalls,
because the producer saw `w.ready` from the cycle before. Latency one cycle.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class SkidBuffer(wiring.Component):
    """`w` (in) to `r` (out), in order, every beat once; registered on both sides."""

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"w": In(stream.Signature(shape)), "r": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        # Named apart from the module (a Verilog instance named like a signal inside it is a
        # VARHIDDEN lint warning).
        skid = Signal.like(self.w.payload, name="spare")
        skid_valid = Signal(name="spare_valid")
        # The producer may send while the skid entry is empty: at most one beat can arrive
        # in a cycle the output stalls, and it lands there.
        m.d.comb += self.w.ready.eq(~skid_valid)
        output_free = ~self.r.valid | self.r.ready
        with m.If(output_free):
            with m.If(skid_valid):
                m.d.sync += [self.r.payload.eq(skid), self.r.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.r.payload.eq(self.w.payload), self.r.valid.eq(self.w.valid)]
        with m.Elif(self.w.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.w.payload), skid_valid.eq(1)]
        return m
