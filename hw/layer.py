"""SpikingLayer: the layer engine of every hidden spiking layer (docs/hardware.md).

    events_in ──► EventQueue ──► Accumulator (±weights into currents) ─┐
                                      ▲ sweep port                     │ at eos, once idle
                                      └──────────── LIFSweep ◄─────────┘
                                                       └──► events (fired neurons, then eos)

Per step: events are accumulated until the step's `eos`; once the accumulator is idle
the LIF sweep updates every neuron (t = 0 … T−1, images back to back), clears the
currents and emits the new events followed by one `eos`. Events of the next step wait
in the queue meanwhile.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.event import bits_for, event_signature
from hw.event_queue import EventQueue
from hw.geometry import check_geometry
from hw.lif import check_int
from hw.sweep import accumulator_and_sweep


class SpikingLayer(wiring.Component):
    def __init__(self, geometry, weights, bias, theta_pos, theta_neg, *, leak_shift: int,
                 steps: int, kind: str, lanes: int, weight_width: int, current_width: int,
                 membrane_width: int, queue_depth: int = 512):
        self.geometry = check_geometry(geometry)
        self.accumulator, self.sweep = accumulator_and_sweep(
            geometry, weights, bias, theta_pos, theta_neg, mode="spike", leak_shift=leak_shift,
            steps=steps, kind=kind, lanes=lanes, weight_width=weight_width,
            current_width=current_width, membrane_width=membrane_width)
        self.queue_depth = check_int("queue_depth", queue_depth, 2, "an integer >= 2")
        self.steps = steps
        self.in_addr_width = bits_for(geometry.in_size)
        self.out_addr_width = bits_for(geometry.out_size)
        super().__init__({
            "events_in": In(event_signature(self.in_addr_width)),
            "events": Out(event_signature(self.out_addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = EventQueue(self.in_addr_width, self.queue_depth)
        m.submodules.accumulator = acc = self.accumulator
        m.submodules.sweep = sweep = self.sweep
        wiring.connect(m, wiring.flipped(self.events_in), queue.w)
        wiring.connect(m, sweep.events, wiring.flipped(self.events))
        m.d.comb += [acc.sweep_en.eq(sweep.cur_en), acc.sweep_clear.eq(sweep.cur_clear),
                     acc.sweep_addr.eq(sweep.cur_addr), sweep.cur_data.eq(acc.sweep_data)]

        t = Signal(range(max(2, self.steps)))
        head = queue.r.payload
        m.d.comb += [acc.events.payload.addr.eq(head.addr), acc.events.payload.neg.eq(head.neg),
                     sweep.t.eq(t), sweep.clear.eq(1)]
        with m.FSM():
            with m.State("ACCUMULATE"):
                m.d.comb += [acc.events.valid.eq(queue.r.valid & ~head.eos),
                             queue.r.ready.eq(head.eos | acc.events.ready)]
                with m.If(queue.r.valid & head.eos):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(acc.idle):
                    m.d.comb += sweep.start.eq(1)
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                with m.If(sweep.done):
                    m.d.sync += t.eq(Mux(t == self.steps - 1, 0, t + 1))
                    m.next = "ACCUMULATE"
        return m
