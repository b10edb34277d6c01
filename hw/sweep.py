"""LIF sweep: at the end of a step, walk every neuron of a layer P at a time through the
LIF unit, write the membranes back, optionally clear the currents, and emit the fired
neurons as events (address order within a lane word, lowest lane first), then `eos`.

    issue addr a ──► current + membrane read (1 cycle) ──► LIFUnit (2 cycles)
                 ──► membrane write, spike word (mask, signs, base addr) into a FIFO
                 ──► serialiser: one event per cycle

Reads are issued only while the spike FIFO has room for everything in flight, so the
sweep never loses a word and runs at one address per cycle while spikes are sparse.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.accumulator import Accumulator
from hw.event import bits_for, event_signature, ladder_bits
from hw.fifo import StreamFIFO
from hw.geometry import check_geometry, check_lanes
from hw.lif import CONVERTED_KINDS, NEURON_KINDS, LIFUnit, check_int, check_kind
from hw.msat_neuron import MSATTables, MSATUnit

# The neurons a sweep runs: hw.lif.LIFUnit's, and msat on hw.msat_neuron.MSATUnit.
SWEEP_KINDS = NEURON_KINDS + CONVERTED_KINDS + ("msat",)
SPIKE_FIFO_DEPTH = 16
PIPELINE_DEPTH = 3          # issue -> memory data -> LIF stage 1 -> LIF stage 2 (FIFO push)


def signed_width(values) -> int:
    """Smallest two's complement width holding every value (at least 2 bits)."""
    low, high = min(int(v) for v in values), max(int(v) for v in values)
    width = 2
    while not (-(1 << (width - 1)) <= low and high < (1 << (width - 1))):
        width += 1
    return width


def state_bits(kind: str, membrane_width: int, steps: int, amplitude_width: int = 2) -> tuple[int, int]:
    """(R bits, second state bits) of one neuron in the membrane memory: R alone for the LIF;
    if_subtract: R one bit wider than max(membrane, A) (U − A need not fit the U range) and the
    balance n in [0, T]; msat: R and the running sum S (|S| <= T·max|R|)."""
    if kind == "if_subtract":
        return max(membrane_width, amplitude_width) + 1, bits_for(steps + 1)
    if kind == "msat":
        return membrane_width, membrane_width + bits_for(steps) + 1
    return membrane_width, 0


def check_channel_ints(name, values, channels) -> list[int]:
    arr = np.asarray(values)
    if arr.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},), not {arr.shape!r}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, not {arr.dtype!r}")
    return [int(v) for v in arr]


class LIFSweep(wiring.Component):
    """Ports: `start` (pulse, with `t` and `clear`), `busy`, `done` (pulse after `eos` left),
    the current-memory master (`cur_en`, `cur_clear`, `cur_addr` out, `cur_data` in, one
    cycle read latency), and `events` (out).

    kind "if_subtract" (docs/msat.md §3a) takes `amplitude` (A per channel) and `correction`
    (the IR's `signed`): each membrane word then also holds the neuron's balance counter
    (⌈log2(T+1)⌉ bits), and R is stored one bit wider than max(membrane_width, A) because a
    subtract reset leaves U − A, which the bounds' U range need not hold.

    kind "msat" (docs/msat.md §3b) takes `msat` (hw.msat_neuron.MSATTables) and Θ as
    `theta_pos`; the unit is hw.msat_neuron.MSATUnit. Each membrane word holds R and the
    running sum S (|S| <= T·max|R|: membrane_width + ⌈log2 T⌉ + 1 bits), and every event
    carries the neuron's ladder index m (`m_width` bits, hw.event.event_layout)."""

    def __init__(self, *, out_channels: int, positions: int, bias, theta_pos, theta_neg,
                 leak_shift: int, steps: int, kind: str, lanes: int, current_width: int,
                 membrane_width: int, amplitude=None, correction: bool = False, msat=None):
        self.out_channels = check_int("out_channels", out_channels, 1)
        self.positions = check_int("positions", positions, 1)
        self.lanes = check_int("lanes", lanes, 1)
        if out_channels % lanes:
            raise ValueError(f"lanes must divide out_channels ({out_channels}), not {lanes!r}")
        self.bias = check_channel_ints("bias", bias, out_channels)
        self.theta_pos = check_channel_ints("theta_pos", theta_pos, out_channels)
        self.kind = check_kind(kind, SWEEP_KINDS)
        self.counter = kind == "if_subtract"
        self.amplitude = check_channel_ints("amplitude", amplitude, out_channels) if self.counter else None
        if self.counter and any(a < 1 for a in self.amplitude):
            raise ValueError(f"amplitude must be positive in every channel, not {self.amplitude!r}")
        if not self.counter and (amplitude is not None or correction):
            raise ValueError(f"amplitude and correction are for if_subtract neurons, not {kind!r}")
        self.correction = bool(correction)
        self.msat = self.check_msat(msat, kind, out_channels)
        # A binary (or msat) neuron has no negative threshold (the IR stores None): it is never
        # compared, so -theta_pos stands in and keeps the threshold width the same.
        if self.kind in ("binary", "if_subtract", "msat") and theta_neg is None:
            theta_neg = [-p for p in self.theta_pos]
        self.theta_neg = check_channel_ints("theta_neg", theta_neg, out_channels)
        if kind in ("ternary", "if_subtract") and any(n >= p for n, p in zip(self.theta_neg, self.theta_pos)):
            raise ValueError(f"theta_neg must be below theta_pos in every channel, not "
                             f"{self.theta_neg!r} vs {self.theta_pos!r}")
        self.leak_shift = check_int("leak_shift", leak_shift, 0)
        self.steps = check_int("steps", steps, 1)
        self.current_width = check_int("current_width", current_width, 2)
        self.membrane_width = check_int("membrane_width", membrane_width, 2)
        self.stored_width, second = state_bits(kind, membrane_width, steps,
                                               signed_width(self.amplitude) if self.counter else 2)
        self.counter_width = second if self.counter else 0
        self.sum_width = second if self.msat else 0
        self.m_width = ladder_bits(self.msat.ladder_steps) if self.msat else 0
        self.groups = out_channels // lanes
        self.depth = self.groups * positions
        self.out_addr_width = bits_for(out_channels * positions)
        self.current_shape = data.ArrayLayout(signed(current_width), lanes)
        super().__init__({
            "start": In(1), "t": In(range(max(2, steps))), "clear": In(1),
            "busy": Out(1), "done": Out(1),
            "cur_en": Out(1), "cur_clear": Out(1), "cur_addr": Out(bits_for(self.depth)),
            "cur_data": In(self.current_shape),
            "events": Out(event_signature(self.out_addr_width, self.m_width)),
        })

    def check_msat(self, msat, kind, channels):
        """The msat layer's tables (None for other kinds), checked against the thresholds."""
        if kind != "msat":
            if msat is not None:
                raise ValueError(f"msat tables are for msat neurons, not {kind!r}")
            return None
        if not isinstance(msat, MSATTables):
            raise ValueError(f"msat must be an hw.msat_neuron.MSATTables for an msat neuron, not {msat!r}")
        if msat.channels != channels:
            raise ValueError(f"msat tables must have one shift per channel ({channels}), not {msat.channels}")
        step = 1 << msat.ladder_steps
        if any(v < step or v % step for v in self.theta_pos):
            raise ValueError(f"theta_pos must be a positive multiple of 2^ladder_steps = {step} in every "
                             f"channel, not {self.theta_pos!r}")
        return msat

    @property
    def event_width(self) -> int:
        """Address and ladder-index bits of an event (what the top calls its address width)."""
        return self.out_addr_width + self.m_width

    def lane_table(self, values, j, width):
        return Array(Const(values[g * self.lanes + j], signed(width)) for g in range(self.groups))

    def elaborate(self, platform):
        m = Module()
        P, pos = self.lanes, self.positions
        bias_width = signed_width(self.bias)
        theta_width = signed_width(self.theta_pos + self.theta_neg + (self.amplitude or []))
        counter = {"counter_width": self.counter_width, "correction": self.correction} if self.counter else {}
        addr_width = bits_for(self.depth)
        base_width = self.out_addr_width
        tag_layout = data.StructLayout({"addr": unsigned(addr_width), "base": unsigned(base_width)})
        if self.msat:
            m.submodules.lif = lif = MSATUnit(
                lanes=P, steps=self.steps, **self.msat.unit_tables(), current_width=self.current_width,
                bias_width=bias_width, membrane_width=self.stored_width, sum_width=self.sum_width,
                theta_width=theta_width, shift_width=self.msat.shift_width, tag_width=tag_layout.size)
        else:
            m.submodules.lif = lif = LIFUnit(
                lanes=P, steps=self.steps, leak_shift=self.leak_shift, kind=self.kind,
                current_width=self.current_width, bias_width=bias_width,
                membrane_width=self.stored_width, theta_width=theta_width, tag_width=tag_layout.size, **counter)
        if self.counter:
            state = data.StructLayout({"membrane": signed(self.stored_width), "count": unsigned(self.counter_width)})
        elif self.msat:
            state = data.StructLayout({"membrane": signed(self.stored_width), "sum": signed(self.sum_width)})
        else:
            state = signed(self.membrane_width)
        m.submodules.membranes = mmem = Memory(
            shape=data.ArrayLayout(state, P), depth=max(2, self.depth), init=[])
        m_rd, m_wr = mmem.read_port(), mmem.write_port()
        word_layout = data.StructLayout({"fire": P, "neg": P, "base": unsigned(base_width),
                                         **({"m": data.ArrayLayout(self.m_width, P)} if self.msat else {})})
        m.submodules.spikes = spikes = StreamFIFO(word_layout, SPIKE_FIFO_DEPTH)

        # -- issue -------------------------------------------------------------------------
        t = Signal.like(self.t)
        clear = Signal()
        addr = Signal(addr_width)
        group = Signal(range(max(2, self.groups)))
        position = Signal(range(max(2, pos)))
        base = Signal(base_width)          # g·P·pos + position: lane 0's neuron address
        group_base = Signal(base_width)    # g·P·pos
        running, draining, eos = Signal(), Signal(), Signal()
        can_issue = spikes.level < SPIKE_FIFO_DEPTH - PIPELINE_DEPTH
        issue = running & can_issue
        m.d.comb += [
            self.cur_en.eq(issue), self.cur_clear.eq(clear), self.cur_addr.eq(addr),
            m_rd.addr.eq(addr), m_rd.en.eq(issue),
        ]
        with m.If(self.start & ~self.busy):
            m.d.sync += [running.eq(1), t.eq(self.t), clear.eq(self.clear), addr.eq(0), group.eq(0),
                         position.eq(0), base.eq(0), group_base.eq(0)]
        with m.If(issue):
            m.d.sync += addr.eq(addr + 1)
            with m.If(position == pos - 1):
                m.d.sync += [position.eq(0), group.eq(group + 1),
                             group_base.eq(group_base + P * pos), base.eq(group_base + P * pos)]
            with m.Else():
                m.d.sync += [position.eq(position + 1), base.eq(base + 1)]
            with m.If(addr == self.depth - 1):
                m.d.sync += [running.eq(0), draining.eq(1)]

        # -- memory data -> LIF unit ----------------------------------------------------------
        valid1 = Signal()
        group1 = Signal.like(group)
        tag1 = Signal(tag_layout)
        m.d.sync += [valid1.eq(issue), group1.eq(group), tag1.addr.eq(addr), tag1.base.eq(base)]
        n = lif.neurons.payload
        m.d.comb += [lif.neurons.valid.eq(valid1), n.t.eq(t), n.tag.eq(tag1),
                     lif.updates.ready.eq(1)]
        for j in range(P):
            stored = m_rd.data[j].membrane if self.counter or self.msat else m_rd.data[j]
            if self.msat:
                shift_width = self.msat.shift_width
                m.d.comb += [
                    n.lanes[j].current.eq(self.cur_data[j]),
                    n.lanes[j].membrane.eq(stored),
                    n.lanes[j].sum.eq(m_rd.data[j].sum),
                    n.lanes[j].bias.eq(self.lane_table(self.bias, j, bias_width)[group1]),
                    n.lanes[j].theta.eq(self.lane_table(self.theta_pos, j, theta_width)[group1]),
                    n.lanes[j].d_shift.eq(self.lane_table(self.msat.d_shift, j, shift_width)[group1]),
                    n.lanes[j].x_shift.eq(self.lane_table(self.msat.x_shift, j, shift_width)[group1]),
                ]
                continue
            if self.counter:
                m.d.comb += [n.lanes[j].count.eq(m_rd.data[j].count),
                             n.lanes[j].amplitude.eq(self.lane_table(self.amplitude, j, theta_width)[group1])]
            m.d.comb += [
                n.lanes[j].current.eq(self.cur_data[j]),
                n.lanes[j].membrane.eq(stored),
                n.lanes[j].bias.eq(self.lane_table(self.bias, j, bias_width)[group1]),
                n.lanes[j].theta_pos.eq(self.lane_table(self.theta_pos, j, theta_width)[group1]),
                n.lanes[j].theta_neg.eq(self.lane_table(self.theta_neg, j, theta_width)[group1]),
            ]
        valid2 = Signal()
        m.d.sync += valid2.eq(valid1)

        # -- LIF output: membrane write-back and spike word ------------------------------------
        u = lif.updates.payload
        u_tag = tag_layout(u.tag)
        fire = Signal(P)
        m.d.comb += [fire[j].eq(u.lanes[j].fire) for j in range(P)]
        m.d.comb += [m_wr.en.eq(lif.updates.valid), m_wr.addr.eq(u_tag.addr)]
        if self.counter:
            m.d.comb += [m_wr.data[j].membrane.eq(u.lanes[j].membrane) for j in range(P)]
            m.d.comb += [m_wr.data[j].count.eq(u.lanes[j].count) for j in range(P)]
        elif self.msat:
            m.d.comb += [m_wr.data[j].membrane.eq(u.lanes[j].membrane) for j in range(P)]
            m.d.comb += [m_wr.data[j].sum.eq(u.lanes[j].sum) for j in range(P)]
            m.d.comb += [spikes.w.payload.m[j].eq(u.lanes[j].m) for j in range(P)]
        else:
            m.d.comb += [m_wr.data[j].eq(u.lanes[j].membrane) for j in range(P)]
        m.d.comb += [
            spikes.w.valid.eq(lif.updates.valid & (fire != 0)),
            spikes.w.payload.fire.eq(fire),
            spikes.w.payload.base.eq(u_tag.base),
        ]
        if not self.msat:       # an msat spike is never negative
            m.d.comb += [spikes.w.payload.neg[j].eq(u.lanes[j].neg) for j in range(P)]
        in_flight = valid1 | valid2 | lif.updates.valid

        # -- serialiser: one event per cycle, lowest lane first ----------------------------------
        pending, signs = Signal(P), Signal(P)
        rungs = Signal(data.ArrayLayout(self.m_width, P)) if self.msat else None
        word_base = Signal(base_width)
        lowest = Signal(range(max(2, P)))
        for j in reversed(range(P)):
            with m.If(pending[j]):
                m.d.comb += lowest.eq(j)
        offsets = Array(Const(j * pos, base_width) for j in range(P))
        ev = self.events.payload
        take = self.events.valid & self.events.ready
        next_pending = Mux(take & ~eos, pending & (pending - 1), pending)
        m.d.comb += spikes.r.ready.eq(next_pending == 0)
        with m.If(spikes.r.valid & spikes.r.ready):
            m.d.sync += [pending.eq(spikes.r.payload.fire), signs.eq(spikes.r.payload.neg),
                         word_base.eq(spikes.r.payload.base)]
            if self.msat:
                m.d.sync += rungs.eq(spikes.r.payload.m)
        with m.Else():
            m.d.sync += pending.eq(next_pending)
        with m.If(eos):
            m.d.comb += [self.events.valid.eq(1), ev.eos.eq(1)]
        with m.Else():
            m.d.comb += [self.events.valid.eq(pending != 0), ev.addr.eq(word_base + offsets[lowest]),
                         ev.neg.eq(signs.bit_select(lowest, 1))]
            if self.msat:
                m.d.comb += ev.m.eq(rungs[lowest])

        # -- end of sweep: everything emitted, then eos -------------------------------------------
        with m.If(draining & ~in_flight & (spikes.level == 0) & (pending == 0)):
            m.d.sync += [draining.eq(0), eos.eq(1)]
        with m.If(eos & self.events.ready):
            m.d.sync += eos.eq(0)
        m.d.comb += [self.done.eq(eos & self.events.ready),
                     self.busy.eq(running | draining | eos)]
        return m


def accumulator_and_sweep(geometry, weights, bias, theta_pos, theta_neg, *, mode: str, leak_shift: int,
                          steps: int, kind: str, lanes: int, weight_width: int, current_width: int,
                          membrane_width: int, amplitude=None, correction: bool = False, msat=None,
                          ladder_steps: int = 0):
    """The two halves every neuron layer engine is built from: the P-lane accumulator that
    writes the currents (`mode` "spike" or "pixel"; `ladder_steps`: the M of an msat source,
    whose events carry m) and the LIF sweep that reads them (`msat`: an msat layer's tables)."""
    check_geometry(geometry)
    check_lanes(lanes, geometry.out_channels)
    accumulator = Accumulator(geometry, weights, lanes=lanes, weight_width=weight_width,
                              current_width=current_width, mode=mode, ladder_steps=ladder_steps)
    sweep = LIFSweep(out_channels=geometry.out_channels, positions=geometry.out_positions,
                     bias=bias, theta_pos=theta_pos, theta_neg=theta_neg,
                     leak_shift=leak_shift, steps=steps, kind=kind, lanes=lanes,
                     current_width=current_width, membrane_width=membrane_width,
                     amplitude=amplitude, correction=correction, msat=msat)
    return accumulator, sweep
