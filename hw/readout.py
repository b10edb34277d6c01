"""ReadoutLayer: the last layer engine; sums its currents over the T steps of an image and
returns the logits (Σ_t I^t + T·b) and the class (smallest index of the maximum).

    events_in ──► EventQueue ──► Accumulator (±weights, no clearing between steps)
    after the T-th eos: read + clear the currents, add T·b, argmax ──► result (one beat)
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.accumulator import Accumulator
from hw.event import bits_for, connect_events, event_layout, event_signature, ladder_bits
from hw.event_queue import EventQueue
from hw.geometry import check_geometry, check_lanes
from hw.lif import check_int
from hw.sweep import check_channel_ints


def result_layout(logit_width: int, classes: int) -> data.StructLayout:
    return data.StructLayout({"logits": data.ArrayLayout(signed(logit_width), classes),
                              "cls": unsigned(max(1, (classes - 1).bit_length()))})


def argmax_states(m: Module, logits, index: Signal, best: Signal, best_value: Signal, *, then: str) -> None:
    """The FIRST and ARGMAX states of a readout's FSM (inside its `m.FSM()`): the class of the
    largest logit in K − 1 cycles, strict > keeping the smallest index of a tie, then state
    `then`. One class has no ARGMAX state: its `index >= 0` would be constant (a lint error)."""
    K = len(logits)
    with m.State("FIRST"):
        m.d.sync += [index.eq(1), best.eq(0), best_value.eq(logits[0])]
        m.next = "ARGMAX" if K > 1 else then
    if K > 1:
        with m.State("ARGMAX"):
            with m.Switch(index):
                for i in range(1, K):
                    with m.Case(i):
                        with m.If(logits[i] > best_value):
                            m.d.sync += [best.eq(i), best_value.eq(logits[i])]
            m.d.sync += index.eq(index + 1)
            with m.If(index >= K - 1):
                m.next = then


class ReadoutLayer(wiring.Component):
    def __init__(self, geometry, weights, bias, *, lanes: int, weight_width: int, steps: int,
                 current_width: int, logit_width: int, queue_depth: int = 512, ladder_steps: int = 0):
        self.geometry = check_geometry(geometry)
        check_lanes(lanes, geometry.out_channels)
        self.steps = check_int("steps", steps, 1)
        self.logit_width = check_int("logit_width", logit_width, 2)
        self.queue_depth = check_int("queue_depth", queue_depth, 2, "an integer >= 2")
        self.bias = check_channel_ints("bias", bias, geometry.out_channels)
        # The currents add up over T steps here: size them for the sum, whatever the caller
        # computed for one step.
        self.sum_width = max(logit_width, check_int("current_width", current_width, 2)
                             + steps.bit_length()) + 1
        # ladder_steps: M of an msat source, whose events carry m (docs/msat.md §3b).
        self.accumulator = Accumulator(geometry, weights, lanes=lanes, weight_width=weight_width,
                                       current_width=self.sum_width, mode="spike", ladder_steps=ladder_steps)
        self.lanes = lanes
        self.classes = geometry.out_size
        self.in_addr_width = bits_for(geometry.in_size)
        self.in_m_width = ladder_bits(ladder_steps)
        self.result_layout = result_layout(logit_width, self.classes)
        super().__init__({
            "events_in": In(event_signature(self.in_addr_width, self.in_m_width)),
            "result": Out(stream.Signature(self.result_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = EventQueue(self.in_addr_width + self.in_m_width, self.queue_depth)
        m.submodules.accumulator = acc = self.accumulator
        connect_events(m, self.events_in, queue.w)
        P, K = self.lanes, self.classes
        positions = self.geometry.out_positions
        depth = acc.current_depth

        t = Signal(range(max(2, self.steps)))
        head = data.View(event_layout(self.in_addr_width, self.in_m_width), queue.r.payload.as_value())
        m.d.comb += [acc.events.payload.addr.eq(head.addr), acc.events.payload.neg.eq(head.neg)]
        if self.in_m_width:
            m.d.comb += acc.events.payload.m.eq(head.m)
        logits = [Signal(signed(self.logit_width), name=f"logit{i}") for i in range(K)]
        best = Signal.like(self.result.payload.cls)
        # Every payload field is driven unconditionally from a register (the class too, though
        # it only matters while `valid`), so the payload is a net in the Verilog. With one field
        # driven inside the FSM the backend makes the payload a `reg` written by one `always @*`
        # per field; under SystemVerilog rules (Icarus -g2012) a declaration initialiser is no
        # event, so a block whose register never leaves its initial value never runs and its
        # field stays X (a logit that is 0 for every image: no spikes in and b = 0).
        m.d.comb += [self.result.payload.logits[i].eq(logits[i]) for i in range(K)]
        m.d.comb += self.result.payload.cls.eq(best)

        read_addr = Signal(range(depth + 1))
        data_valid, data_addr = Signal(), Signal(range(max(2, depth)))
        m.d.sync += [data_valid.eq(acc.sweep_en), data_addr.eq(read_addr)]
        with m.If(data_valid):
            with m.Switch(data_addr):
                for a in range(depth):
                    g, p = divmod(a, positions)
                    with m.Case(a):
                        for j in range(P):
                            neuron = (g * P + j) * positions + p
                            channel = g * P + j
                            m.d.sync += logits[neuron].eq(acc.sweep_data[j] + self.steps * self.bias[channel])

        index = Signal(range(K + 1))
        best_value = Signal(signed(self.logit_width))
        with m.FSM():
            with m.State("ACCUMULATE"):
                m.d.comb += [acc.events.valid.eq(queue.r.valid & ~head.eos),
                             queue.r.ready.eq(head.eos | acc.events.ready)]
                with m.If(queue.r.valid & head.eos):
                    with m.If(t == self.steps - 1):
                        m.d.sync += t.eq(0)
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += t.eq(t + 1)
            with m.State("DRAIN"):
                with m.If(acc.idle):
                    m.d.sync += read_addr.eq(0)
                    m.next = "READ"
            with m.State("READ"):
                m.d.comb += [acc.sweep_en.eq(1), acc.sweep_clear.eq(1), acc.sweep_addr.eq(read_addr)]
                m.d.sync += read_addr.eq(read_addr + 1)
                with m.If(read_addr == depth - 1):
                    m.next = "SETTLE"
            with m.State("SETTLE"):       # the last word lands in the logits this cycle
                m.next = "FIRST"
            argmax_states(m, logits, index, best, best_value, then="EMIT")
            with m.State("EMIT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "ACCUMULATE"
        return m
