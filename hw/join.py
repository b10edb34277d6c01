"""End-of-step join: N event streams (one per projection of a layer) into one stream for the
layer's accumulator, and the moment every input has ended the step (docs/hardware.md,
"Graph-shaped hardware").

    in0 ──┐ round-robin over the inputs that hold an event of the current step
    in1 ──┼──► events (addr, neg, proj = the input's index) ──► MultiAccumulator
    ...  ─┘   an input's eos is consumed at once and holds that input until `release`

An input that has delivered its end-of-step marker is held (its events of the next step
wait in its queue) until every input has delivered its own: then `step_done` is high, and
stays high until the engine, after its LIF sweep, pulses `release`.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.event import bits_for, check_addr_width, event_signature


def merged_layout(addr_widths) -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(max(addr_widths)), "neg": 1,
                              "proj": unsigned(bits_for(len(addr_widths)))})


def input_name(i: int) -> str:
    return f"in{i}"


class EventJoin(wiring.Component):
    """Ports: `in0` … `in{N-1}` (Event streams, addr widths as given), `events` (out: addr,
    neg, proj), `step_done` (out: every input has delivered this step's eos), `release` (in:
    pulse to start the next step)."""

    def __init__(self, addr_widths):
        self.addr_widths = [check_addr_width(w) for w in addr_widths]
        if not self.addr_widths:
            raise ValueError("addr_widths must name at least one input, not []")
        self.layout = merged_layout(self.addr_widths)
        super().__init__({
            **{input_name(i): In(event_signature(w)) for i, w in enumerate(self.addr_widths)},
            "events": Out(stream.Signature(self.layout)),
            "step_done": Out(1),
            "release": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self.addr_widths)
        inputs = [getattr(self, input_name(i)) for i in range(n)]
        done = Signal(n)            # input i has delivered the current step's eos
        last = Signal(range(max(2, n)))   # the input granted last (round-robin)
        request = [s.valid & ~s.payload.eos & ~done[i] for i, s in enumerate(inputs)]
        marker = [s.valid & s.payload.eos & ~done[i] for i, s in enumerate(inputs)]

        # Round-robin: the first requesting input after `last` (the later m.If wins).
        select = Signal(range(max(2, n)))
        with m.Switch(last):
            for k in range(n):
                with m.Case(k):
                    for i in reversed([(k + 1 + j) % n for j in range(n)]):
                        with m.If(request[i]):
                            m.d.comb += select.eq(i)
        any_request = Cat(*request).any()
        out = self.events
        m.d.comb += [
            out.valid.eq(any_request),
            out.payload.addr.eq(Array(s.payload.addr for s in inputs)[select]),
            out.payload.neg.eq(Array(s.payload.neg for s in inputs)[select]),
            out.payload.proj.eq(select),
        ]
        take = out.valid & out.ready
        for i, s in enumerate(inputs):
            m.d.comb += s.ready.eq(marker[i] | (request[i] & take & (select == i)))
        with m.If(take):
            m.d.sync += last.eq(select)

        with m.If(self.release):
            m.d.sync += done.eq(0)
        with m.Else():
            m.d.sync += done.eq(done | Cat(*marker))
        m.d.comb += self.step_done.eq(done == (1 << n) - 1)
        return m
