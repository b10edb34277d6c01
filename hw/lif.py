"""LIF update unit: P lanes of the SPEC §4 neuron update, one neuron per lane per cycle.

    U = R + ((I + b) << k·t)          (R is taken as 0 at t = 0)
    ternary: +1 if U >= θ⁺ << k·t, −1 if U <= θ⁻ << k·t, else 0   (ties fire)
    binary:  +1 if U >= θ⁺ << k·t, else 0
    R' = U if no spike else 0
    if_subtract (docs/msat.md §3a, no leak): +1 if U >= θ⁺; −1 if `correction` and U <= θ⁻ and the
             neuron's balance n > 0; R' = U − s·A; n' = n + s (n: an unsigned `counter_width`-bit
             per-neuron counter, 0 <= n <= T, taken as 0 at t = 0 like R)

A two-stage stream pipeline (in: `neurons`, out: `updates`) that stalls as a whole on
back-pressure. The shift by k·t is a mux over the T possible amounts, not a barrel shifter;
it is taken in stage 1 (drive and thresholds registered shifted), so that stage 2 is the
add, the comparisons and the reset only (the ECP5 critical path of a dense engine was t →
the shift mux → U → U ≥ θ⁺ → reset in one cycle). With no shift (k = 0 or T = 1) there is
no mux, and at T = 1 no R: U is I + b.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.event import bits_for

NEURON_KINDS = ("ternary", "binary")
# Converted neurons (docs/msat.md) this unit implements beside the SPEC §4 LIF.
CONVERTED_KINDS = ("if_subtract",)


def check_int(name, value, low, rule=None):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be {rule or f'an integer >= {low}'}, not {value!r}")
    return value


def check_kind(kind, kinds=NEURON_KINDS):
    if kind not in kinds:
        raise ValueError(f"kind must be one of {', '.join(kinds)}, not {kind!r}")
    return kind


def neuron_in_layout(current_width, bias_width, membrane_width, theta_width):
    return data.StructLayout({
        "current": signed(current_width), "bias": signed(bias_width),
        "membrane": signed(membrane_width),
        "theta_pos": signed(theta_width), "theta_neg": signed(theta_width),
    })


def neuron_out_layout(membrane_width):
    return data.StructLayout({"fire": 1, "neg": 1, "membrane": signed(membrane_width)})


def counter_in_layout(current_width, bias_width, membrane_width, theta_width, counter_width):
    """An if_subtract lane: the LIF lane plus its amplitude A and its balance counter n."""
    fields = dict(neuron_in_layout(current_width, bias_width, membrane_width, theta_width).members)
    return data.StructLayout({**fields, "amplitude": signed(theta_width), "count": unsigned(counter_width)})


def counter_out_layout(membrane_width, counter_width):
    fields = dict(neuron_out_layout(membrane_width).members)
    return data.StructLayout({**fields, "count": unsigned(counter_width)})


class LIFUnit(wiring.Component):
    """P-lane LIF update. `tag` rides along unchanged (the sweep puts the address there)."""

    def __init__(self, *, lanes: int, steps: int, leak_shift: int, kind: str,
                 current_width: int, bias_width: int, membrane_width: int, theta_width: int,
                 tag_width: int = 1, counter_width: int = 0, correction: bool = False):
        self.lanes = check_int("lanes", lanes, 1)
        self.steps = check_int("steps", steps, 1)
        self.leak_shift = check_int("leak_shift", leak_shift, 0)
        self.kind = check_kind(kind, NEURON_KINDS + CONVERTED_KINDS)
        self.counter = kind == "if_subtract"
        self.correction = bool(correction)
        if self.counter:
            check_int("counter_width", counter_width, 1)
            if leak_shift:
                raise ValueError(f"leak_shift must be 0 for an if_subtract neuron, not {leak_shift!r}")
        elif counter_width or correction:
            raise ValueError(f"counter_width and correction are for if_subtract neurons, not {kind!r}")
        self.counter_width = counter_width
        self.current_width = check_int("current_width", current_width, 2)
        self.bias_width = check_int("bias_width", bias_width, 1)
        self.membrane_width = check_int("membrane_width", membrane_width, 2)
        self.theta_width = check_int("theta_width", theta_width, 2)
        self.tag_width = check_int("tag_width", tag_width, 1)
        self.t_width = bits_for(steps)
        self.in_layout = data.StructLayout({
            "t": unsigned(self.t_width), "tag": unsigned(tag_width),
            "lanes": data.ArrayLayout(self.lane_in_layout(), lanes)})
        self.out_layout = data.StructLayout({
            "tag": unsigned(tag_width),
            "lanes": data.ArrayLayout(self.lane_out_layout(), lanes)})
        super().__init__({
            "neurons": In(stream.Signature(self.in_layout)),
            "updates": Out(stream.Signature(self.out_layout)),
        })

    def lane_in_layout(self):
        widths = (self.current_width, self.bias_width, self.membrane_width, self.theta_width)
        if self.counter:
            return counter_in_layout(*widths, self.counter_width)
        return neuron_in_layout(*widths)

    def lane_out_layout(self):
        if self.counter:
            return counter_out_layout(self.membrane_width, self.counter_width)
        return neuron_out_layout(self.membrane_width)

    def shifted(self, m, value, t, width):
        """value << k·t as a mux over t (t < T: the last step's case is the default, so no
        value of t outside the schedule adds a term); `value` itself when nothing shifts."""
        out = Signal(signed(width))
        if self.leak_shift == 0 or self.steps == 1:
            m.d.comb += out.eq(value)
            return out
        with m.Switch(t):
            for step in range(self.steps - 1):
                with m.Case(step):
                    m.d.comb += out.eq(value << (self.leak_shift * step))
            with m.Default():
                m.d.comb += out.eq(value << (self.leak_shift * (self.steps - 1)))
        return out

    def elaborate(self, platform):
        m = Module()
        k_max = self.leak_shift * (self.steps - 1)
        drive_width = max(self.current_width, self.bias_width) + 1
        u_width = max(self.membrane_width, drive_width + k_max, self.theta_width + k_max) + 2

        advance = ~self.updates.valid | self.updates.ready
        m.d.comb += self.neurons.ready.eq(advance)

        # Stage 1: (I + b) << k·t, θ± << k·t, and R forced to 0 at t = 0 (a constant 0 at T = 1).
        valid1 = Signal()
        tag1 = Signal.like(self.neurons.payload.tag)
        drive = [Signal(signed(drive_width + k_max), name=f"drive{j}") for j in range(self.lanes)]
        prev = [Signal(signed(self.membrane_width), name=f"prev{j}") if self.steps > 1 else Const(0, signed(1))
                for j in range(self.lanes)]
        th_pos = [Signal(signed(self.theta_width + k_max), name=f"th_pos{j}") for j in range(self.lanes)]
        th_neg = [Signal(signed(self.theta_width + k_max), name=f"th_neg{j}") for j in range(self.lanes)]
        inp = self.neurons.payload
        with m.If(advance):
            m.d.sync += [valid1.eq(self.neurons.valid), tag1.eq(inp.tag)]
        for j in range(self.lanes):
            lane = inp.lanes[j]
            sum_ = Signal(signed(drive_width), name=f"sum{j}")
            m.d.comb += sum_.eq(lane.current + lane.bias)
            shifted = [self.shifted(m, sum_, inp.t, drive_width + k_max),
                       self.shifted(m, lane.theta_pos, inp.t, self.theta_width + k_max),
                       self.shifted(m, lane.theta_neg, inp.t, self.theta_width + k_max)]
            with m.If(advance):
                m.d.sync += [drive[j].eq(shifted[0]), th_pos[j].eq(shifted[1]), th_neg[j].eq(shifted[2])]
                if self.steps > 1:
                    m.d.sync += prev[j].eq(Mux(inp.t == 0, 0, lane.membrane))
        if self.counter:
            return self.elaborate_if_subtract(m, advance, valid1, tag1, drive, prev, th_pos, th_neg, u_width)

        # Stage 2: U, the comparisons and the reset.
        out = self.updates.payload
        with m.If(advance):
            m.d.sync += [self.updates.valid.eq(valid1), out.tag.eq(tag1)]
        for j in range(self.lanes):
            u = Signal(signed(u_width), name=f"u{j}")
            m.d.comb += u.eq(prev[j] + drive[j])
            pos = u >= th_pos[j]
            if self.kind == "ternary":
                neg = u <= th_neg[j]
            else:
                neg = 0
            fire = pos | neg
            with m.If(advance):
                m.d.sync += [
                    out.lanes[j].fire.eq(fire),
                    out.lanes[j].neg.eq(~pos & neg),
                    out.lanes[j].membrane.eq(Mux(fire, 0, u)),
                ]
        return m

    def elaborate_if_subtract(self, m, advance, valid1, tag1, drive, prev, th_pos, th_neg, u_width):
        """Stage 1's amplitude and counter, then stage 2: subtract reset and the signed
        correction (a −1 only while the neuron has given more +1 than −1)."""
        amp = [Signal(signed(self.theta_width), name=f"amp{j}") for j in range(self.lanes)]
        count = [Signal(self.counter_width, name=f"count{j}") for j in range(self.lanes)]
        inp = self.neurons.payload
        with m.If(advance):
            for j in range(self.lanes):
                lane = inp.lanes[j]
                m.d.sync += [amp[j].eq(lane.amplitude), count[j].eq(Mux(inp.t == 0, 0, lane.count))]
        out = self.updates.payload
        with m.If(advance):
            m.d.sync += [self.updates.valid.eq(valid1), out.tag.eq(tag1)]
        for j in range(self.lanes):
            u = Signal(signed(u_width), name=f"u{j}")
            m.d.comb += u.eq(prev[j] + drive[j])
            pos = u >= th_pos[j]
            neg = Signal(name=f"neg{j}")
            if self.correction:
                m.d.comb += neg.eq(~pos & (u <= th_neg[j]) & (count[j] != 0))
            with m.If(advance):
                m.d.sync += [
                    out.lanes[j].fire.eq(pos | neg),
                    out.lanes[j].neg.eq(neg),
                    out.lanes[j].membrane.eq(Mux(pos, u - amp[j], Mux(neg, u + amp[j], u))),
                    out.lanes[j].count.eq(Mux(pos, count[j] + 1, Mux(neg, count[j] - 1, count[j]))),
                ]
        return m
