"""SpikingLayer: the layer engine of every hidden spiking layer (docs/hardware.md).

    events_in ──► EventQueue ──► Accumulator (±weights into currents) ─┐
                                      ▲ sweep port                     │ at eos, once idle
                                      └──────────── LIFSweep ◄─────────┘
                                                       └──► events (fired neurons, then eos)

Per step: events are accumulated until the step's `eos`; once the accumulator is idle
the LIF sweep updates every neuron (t = 0 … T−1, images back to back), clears the
currents and emits the new events followed by one `eos`. Events of the next step wait
in the queue meanwhile.

A layer that reads several sources (a residual block: main conv plus a shortcut) is built
with `projections=[hw.projection.Projection(source, geometry, weights), ...]`: one input
port and queue per projection, an end-of-step join (hw.join) and one accumulator over all
projections (hw.multi_accumulator), so the currents of every projection are summed before
the sweep (SPEC §4):

    events_in  ──► EventQueue ──┐
    events_in1 ──► EventQueue ──┼─► EventJoin ──► MultiAccumulator ◄── LIFSweep ──► events
    ...                         ┘   (sweep once every input has ended the step)
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.event import bits_for, connect_events, event_layout, event_signature, ladder_bits
from hw.event_queue import EventQueue
from hw.geometry import check_geometry
from hw.join import EventJoin, input_name
from hw.lif import check_int
from hw.multi_accumulator import MultiAccumulator
from hw.projection import IdentityGeometry, check_projections, out_shape
from hw.sweep import LIFSweep, accumulator_and_sweep


def input_port(i: int) -> str:
    """The input port of projection i: `events_in`, `events_in1`, `events_in2`, …"""
    return "events_in" if i == 0 else f"events_in{i}"


def check_ladders(ladder_steps, count: int) -> list[int]:
    """One source M per projection: an integer for all, or a list (0: ternary or binary events)."""
    ladders = [ladder_steps] * count if isinstance(ladder_steps, int) else list(ladder_steps)
    if len(ladders) != count:
        raise ValueError(f"ladder_steps must be an integer or one per projection ({count}), not {ladder_steps!r}")
    return ladders


def check_queue_depths(queue_depth, count: int) -> list[int]:
    depths = [queue_depth] * count if isinstance(queue_depth, int) else list(queue_depth)
    if len(depths) != count:
        raise ValueError(f"queue_depth must be an integer or one per projection ({count}), "
                         f"not {queue_depth!r}")
    return [check_int("queue_depth", d, 2, "an integer >= 2") for d in depths]


class SpikingLayer(wiring.Component):
    """One projection: `SpikingLayer(geometry, weights, bias, ...)`, input port `events_in`.
    Several: `SpikingLayer(None, None, bias, ..., projections=[Projection, ...])`, input port
    `input_port(i)` for projection i (`self.in_ports`: (source, port, addr width) in order);
    `queue_depth` then is one depth for every queue or one per projection. A list of one
    conv or dense projection builds exactly the one-projection engine.

    msat (docs/msat.md §3b): `kind="msat"` with `msat` (hw.msat_neuron.MSATTables) makes it send
    (address, m) events; `ladder_steps` M > 0 says its input comes from an msat layer, whose
    events carry m (the accumulator adds W << (M − m)); with several projections, one M per
    projection (0: a ternary or binary source)."""

    def __init__(self, geometry, weights, bias, theta_pos, theta_neg, *, leak_shift: int,
                 steps: int, kind: str, lanes: int, weight_width: int, current_width: int,
                 membrane_width: int, queue_depth: int = 512, projections=None, amplitude=None,
                 correction: bool = False, msat=None, ladder_steps: int = 0):
        self.projections = None     # the list given, if any
        self.multi = False          # built with a join and one queue per projection
        if projections is not None:
            if geometry is not None or weights is not None:
                raise ValueError("geometry and weights must be None when projections are given, "
                                 f"not {geometry!r} and {type(weights).__name__}")
            projections = check_projections(projections)
            self.projections = projections
            if len(projections) == 1 and not isinstance(projections[0].geometry, IdentityGeometry):
                geometry, weights = projections[0].geometry, projections[0].weights
                queue_depth = check_queue_depths(queue_depth, 1)[0]
            else:
                self.init_graph(projections, bias, theta_pos, theta_neg, leak_shift=leak_shift,
                                steps=steps, kind=kind, lanes=lanes, weight_width=weight_width,
                                current_width=current_width, membrane_width=membrane_width,
                                queue_depth=queue_depth, amplitude=amplitude, correction=correction,
                                msat=msat, ladder_steps=ladder_steps)
                return
            if not isinstance(ladder_steps, int):
                ladder_steps = check_ladders(ladder_steps, 1)[0]
        self.geometry = check_geometry(geometry)
        self.accumulator, self.sweep = accumulator_and_sweep(
            geometry, weights, bias, theta_pos, theta_neg, mode="spike", leak_shift=leak_shift,
            steps=steps, kind=kind, lanes=lanes, weight_width=weight_width,
            current_width=current_width, membrane_width=membrane_width, amplitude=amplitude,
            correction=correction, msat=msat, ladder_steps=ladder_steps)
        self.queue_depth = check_int("queue_depth", queue_depth, 2, "an integer >= 2")
        self.steps = steps
        self.in_addr_width = bits_for(geometry.in_size)
        self.in_m_width = ladder_bits(ladder_steps)
        self.out_addr_width = bits_for(geometry.out_size)
        # in_ports: (source, port, event width: address and ladder-index bits)
        self.in_ports = (("events_in", "events_in", self.in_addr_width + self.in_m_width),)
        if projections is not None:
            self.in_ports = ((projections[0].source, "events_in", self.in_addr_width + self.in_m_width),)
        super().__init__({
            "events_in": In(event_signature(self.in_addr_width, self.in_m_width)),
            "events": Out(event_signature(self.out_addr_width, self.sweep.m_width)),
        })

    def init_graph(self, projections, bias, theta_pos, theta_neg, *, leak_shift, steps, kind, lanes,
                   weight_width, current_width, membrane_width, queue_depth, amplitude, correction, msat,
                   ladder_steps):
        """Several projections: one queue each, the join, one accumulator over them all."""
        self.multi = True
        self.geometry = projections[0].geometry
        channels, height, width = out_shape(self.geometry)
        ladders = check_ladders(ladder_steps, len(projections))
        self.accumulator = MultiAccumulator(projections, lanes=lanes, weight_width=weight_width,
                                            current_width=current_width, ladder_steps=ladders)
        self.sweep = LIFSweep(out_channels=channels, positions=height * width, bias=bias,
                              theta_pos=theta_pos, theta_neg=theta_neg, leak_shift=leak_shift,
                              steps=steps, kind=kind, lanes=lanes, current_width=current_width,
                              membrane_width=membrane_width, amplitude=amplitude, correction=correction,
                              msat=msat)
        self.queue_depths = check_queue_depths(queue_depth, len(projections))
        self.queue_depth = self.queue_depths[0]
        self.steps = steps
        fields = [(bits_for(p.geometry.in_size), ladder_bits(v)) for p, v in zip(projections, ladders)]
        widths = [a + mw for a, mw in fields]
        self.in_ports = tuple((p.source, input_port(i), w) for i, (p, w) in enumerate(zip(projections, widths)))
        self.in_addr_width, self.in_m_width = fields[0]
        self.out_addr_width = bits_for(channels * height * width)
        wiring.Component.__init__(self, {
            **{port: In(event_signature(*f)) for (_, port, _), f in zip(self.in_ports, fields)},
            "events": Out(event_signature(self.out_addr_width, self.sweep.m_width)),
        })

    @property
    def event_width(self) -> int:
        """The address and ladder-index bits of the events it sends (what the top carries)."""
        return self.out_addr_width + self.sweep.m_width

    def elaborate(self, platform):
        if self.multi:
            return self.elaborate_graph()
        m = Module()
        m.submodules.queue = queue = EventQueue(self.in_addr_width + self.in_m_width, self.queue_depth)
        m.submodules.accumulator = acc = self.accumulator
        m.submodules.sweep = sweep = self.sweep
        connect_events(m, self.events_in, queue.w)
        wiring.connect(m, sweep.events, wiring.flipped(self.events))
        m.d.comb += [acc.sweep_en.eq(sweep.cur_en), acc.sweep_clear.eq(sweep.cur_clear),
                     acc.sweep_addr.eq(sweep.cur_addr), sweep.cur_data.eq(acc.sweep_data)]

        t = Signal(range(max(2, self.steps)))
        # The queue holds an (address, m) event as an event of address+m bits (hw.event).
        head = data.View(event_layout(self.in_addr_width, self.in_m_width), queue.r.payload.as_value())
        m.d.comb += [acc.events.payload.addr.eq(head.addr), acc.events.payload.neg.eq(head.neg),
                     sweep.t.eq(t), sweep.clear.eq(1)]
        if self.in_m_width:
            m.d.comb += acc.events.payload.m.eq(head.m)
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

    def elaborate_graph(self):
        m = Module()
        m.submodules.accumulator = acc = self.accumulator
        m.submodules.sweep = sweep = self.sweep
        m.submodules.join = join = EventJoin([w for _, _, w in self.in_ports])
        for i, ((_, port, width), depth) in enumerate(zip(self.in_ports, self.queue_depths)):
            m.submodules[f"queue{i}"] = queue = EventQueue(width, depth)
            connect_events(m, getattr(self, port), queue.w)
            wiring.connect(m, queue.r, getattr(join, input_name(i)))
        wiring.connect(m, sweep.events, wiring.flipped(self.events))
        m.d.comb += [acc.sweep_en.eq(sweep.cur_en), acc.sweep_clear.eq(sweep.cur_clear),
                     acc.sweep_addr.eq(sweep.cur_addr), sweep.cur_data.eq(acc.sweep_data)]
        m.d.comb += [acc.events.valid.eq(join.events.valid), join.events.ready.eq(acc.events.ready),
                     acc.events.payload.addr.eq(join.events.payload.addr),
                     acc.events.payload.neg.eq(join.events.payload.neg),
                     acc.events.payload.proj.eq(join.events.payload.proj)]

        t = Signal(range(max(2, self.steps)))
        m.d.comb += [sweep.t.eq(t), sweep.clear.eq(1)]
        with m.FSM():
            with m.State("ACCUMULATE"):     # the join consumes events until every input ended the step
                with m.If(join.step_done):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(acc.idle):
                    m.d.comb += sweep.start.eq(1)
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                with m.If(sweep.done):
                    m.d.comb += join.release.eq(1)
                    m.d.sync += t.eq(Mux(t == self.steps - 1, 0, t + 1))
                    m.next = "ACCUMULATE"
        return m
