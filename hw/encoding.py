"""EncodingLayer: the first (analog-input) layer engine (docs/hardware.md).

    pixels ──► skip zeros ──► Accumulator (pixel mode: uint8 × int8 weights, DSP) ──► currents
                                                     ▲ sweep port
                                          LIFSweep × T ──► events (per step, then eos)

The image's currents are computed once, on the non-zero pixels only (MNIST is ~80 %
zeros), then reused for all T steps: T LIF sweeps over the same currents, the last one
clearing them. Pixels of the next image wait (back-pressure) until then.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.event import bits_for, event_signature, pixel_signature
from hw.geometry import check_geometry
from hw.sweep import accumulator_and_sweep


class EncodingLayer(wiring.Component):
    def __init__(self, geometry, weights, bias, theta_pos, theta_neg, *, leak_shift: int,
                 steps: int, kind: str, lanes: int, weight_width: int, current_width: int,
                 membrane_width: int, amplitude=None, correction: bool = False, msat=None):
        self.geometry = check_geometry(geometry)
        self.accumulator, self.sweep = accumulator_and_sweep(
            geometry, weights, bias, theta_pos, theta_neg, mode="pixel", leak_shift=leak_shift,
            steps=steps, kind=kind, lanes=lanes, weight_width=weight_width,
            current_width=current_width, membrane_width=membrane_width, amplitude=amplitude,
            correction=correction, msat=msat)
        self.steps = steps
        self.out_addr_width = bits_for(geometry.out_size)
        super().__init__({
            "pixels": In(pixel_signature()),
            "events": Out(event_signature(self.out_addr_width, self.sweep.m_width)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.accumulator = acc = self.accumulator
        m.submodules.sweep = sweep = self.sweep
        wiring.connect(m, sweep.events, wiring.flipped(self.events))
        m.d.comb += [acc.sweep_en.eq(sweep.cur_en), acc.sweep_clear.eq(sweep.cur_clear),
                     acc.sweep_addr.eq(sweep.cur_addr), sweep.cur_data.eq(acc.sweep_data)]

        addr = Signal(range(max(2, self.geometry.in_size)))   # the pixel's flat [C,H,W] index
        t = Signal(range(max(2, self.steps)))
        pixel = self.pixels.payload
        m.d.comb += [acc.events.payload.addr.eq(addr), acc.events.payload.value.eq(pixel.value),
                     sweep.t.eq(t), sweep.clear.eq(t == self.steps - 1)]
        with m.FSM():
            with m.State("LOAD"):
                nonzero = pixel.value != 0
                m.d.comb += [acc.events.valid.eq(self.pixels.valid & nonzero),
                             self.pixels.ready.eq(~nonzero | acc.events.ready)]
                with m.If(self.pixels.valid & self.pixels.ready):
                    m.d.sync += addr.eq(Mux(pixel.last, 0, addr + 1))
                    with m.If(pixel.last):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(acc.idle):
                    m.d.comb += sweep.start.eq(1)
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                with m.If(sweep.done):
                    with m.If(t == self.steps - 1):
                        m.d.sync += t.eq(0)
                        m.next = "LOAD"
                    with m.Else():
                        m.d.sync += t.eq(t + 1)
                        m.next = "DRAIN"
        return m
