"""LIF update unit: P lanes of the SPEC §4 neuron update, one neuron per lane per cycle.

    U = R + ((I + b) << k·t)          (R is taken as 0 at t = 0)
    ternary: +1 if U >= θ⁺ << k·t, −1 if U <= θ⁻ << k·t, else 0   (ties fire)
    binary:  +1 if U >= θ⁺ << k·t, else 0
    R' = U if no spike else 0

A two-stage stream pipeline (in: `neurons`, out: `updates`) that stalls as a whole on
back-pressure. The shift by k·t is a mux over the T possible amounts, not a barrel shifter.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.event import bits_for

NEURON_KINDS = ("ternary", "binary")


def check_int(name, value, low, rule=None):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be {rule or f'an integer >= {low}'}, not {value!r}")
    return value


def check_kind(kind):
    if kind not in NEURON_KINDS:
        raise ValueError(f"kind must be one of {', '.join(NEURON_KINDS)}, not {kind!r}")
    return kind


def neuron_in_layout(current_width, bias_width, membrane_width, theta_width):
    return data.StructLayout({
        "current": signed(current_width), "bias": signed(bias_width),
        "membrane": signed(membrane_width),
        "theta_pos": signed(theta_width), "theta_neg": signed(theta_width),
    })


def neuron_out_layout(membrane_width):
    return data.StructLayout({"fire": 1, "neg": 1, "membrane": signed(membrane_width)})


class LIFUnit(wiring.Component):
    """P-lane LIF update. `tag` rides along unchanged (the sweep puts the address there)."""

    def __init__(self, *, lanes: int, steps: int, leak_shift: int, kind: str,
                 current_width: int, bias_width: int, membrane_width: int, theta_width: int,
                 tag_width: int = 1):
        self.lanes = check_int("lanes", lanes, 1)
        self.steps = check_int("steps", steps, 1)
        self.leak_shift = check_int("leak_shift", leak_shift, 0)
        self.kind = check_kind(kind)
        self.current_width = check_int("current_width", current_width, 2)
        self.bias_width = check_int("bias_width", bias_width, 1)
        self.membrane_width = check_int("membrane_width", membrane_width, 2)
        self.theta_width = check_int("theta_width", theta_width, 2)
        self.tag_width = check_int("tag_width", tag_width, 1)
        self.t_width = bits_for(steps)
        self.in_layout = data.StructLayout({
            "t": unsigned(self.t_width), "tag": unsigned(tag_width),
            "lanes": data.ArrayLayout(neuron_in_layout(current_width, bias_width, membrane_width,
                                                       theta_width), lanes)})
        self.out_layout = data.StructLayout({
            "tag": unsigned(tag_width),
            "lanes": data.ArrayLayout(neuron_out_layout(membrane_width), lanes)})
        super().__init__({
            "neurons": In(stream.Signature(self.in_layout)),
            "updates": Out(stream.Signature(self.out_layout)),
        })

    def shifted(self, m, value, t, width):
        """value << k·t as a mux over t (t < T)."""
        out = Signal(signed(width))
        with m.Switch(t):
            for step in range(self.steps):
                with m.Case(step):
                    m.d.comb += out.eq(value << (self.leak_shift * step))
        return out

    def elaborate(self, platform):
        m = Module()
        k_max = self.leak_shift * (self.steps - 1)
        drive_width = max(self.current_width, self.bias_width) + 1
        u_width = max(self.membrane_width, drive_width + k_max, self.theta_width + k_max) + 2

        advance = ~self.updates.valid | self.updates.ready
        m.d.comb += self.neurons.ready.eq(advance)

        # Stage 1: I + b, and R forced to 0 at t = 0.
        valid1 = Signal()
        t1 = Signal.like(self.neurons.payload.t)
        tag1 = Signal.like(self.neurons.payload.tag)
        drive = [Signal(signed(drive_width), name=f"drive{j}") for j in range(self.lanes)]
        prev = [Signal(signed(self.membrane_width), name=f"prev{j}") for j in range(self.lanes)]
        th_pos = [Signal(signed(self.theta_width), name=f"th_pos{j}") for j in range(self.lanes)]
        th_neg = [Signal(signed(self.theta_width), name=f"th_neg{j}") for j in range(self.lanes)]
        with m.If(advance):
            inp = self.neurons.payload
            m.d.sync += [valid1.eq(self.neurons.valid), t1.eq(inp.t), tag1.eq(inp.tag)]
            for j in range(self.lanes):
                lane = inp.lanes[j]
                m.d.sync += [
                    drive[j].eq(lane.current + lane.bias),
                    prev[j].eq(Mux(inp.t == 0, 0, lane.membrane)),
                    th_pos[j].eq(lane.theta_pos), th_neg[j].eq(lane.theta_neg),
                ]

        # Stage 2: U, the comparisons and the reset.
        out = self.updates.payload
        with m.If(advance):
            m.d.sync += [self.updates.valid.eq(valid1), out.tag.eq(tag1)]
        for j in range(self.lanes):
            u = Signal(signed(u_width), name=f"u{j}")
            m.d.comb += u.eq(prev[j] + self.shifted(m, drive[j], t1, u_width))
            pos = u >= self.shifted(m, th_pos[j], t1, u_width)
            if self.kind == "ternary":
                neg = u <= self.shifted(m, th_neg[j], t1, u_width)
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
