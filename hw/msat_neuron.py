"""MSAT neuron unit: P lanes of the adaptive IF on a power-of-two ladder (docs/msat.md §3b),
one neuron per lane per cycle; hw.sweep.LIFSweep runs it for an msat layer (kind "msat").

    U = R + I                                        (at t = 0: R = 0, or Θ >> 1 with half_start; S = 0)
    m = 0 at t = 0; else i_d = cell of N = t·R − S (step t·2^d_shift), i_x = cell of I
        (step 2^x_shift), z = LUT_d[i_d] + LUT_x[i_x], m = #{j : z < Z_j}
    s = U >= Θ >> m;  R' = U − s·(Θ >> m);  S' = S + R'

The cells need no divider. ⌊N / (t·2^s)⌋ = ⌊⌊N / 2^s⌋ / t⌋ (floors nest for positive
divisors), so each lane shifts N by its channel's s (right, or left for a negative s), clamps
it to ±H·(T−1) (which changes no cell: past ±H·t every boundary is reached or none is) and
counts the boundaries k·t (k = −H+1 … H−1) it reaches: ⌊q / t⌋ + H clamped to [0, 2H − 1]. The
multiples k·t are the same for every lane (t is the beat's step), made once in stage 1; each
lane's comparisons are as narrow as H·T. The current's cell (step 1) is its shift plus H,
clamped. Two stages as hw.lif.LIFUnit (in: `neurons`, out: `updates`, stalling as a whole).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.event import bits_for
from hw.lif import check_int


def check_table(name, values, length):
    values = [int(v) for v in values]
    if len(values) != length:
        raise ValueError(f"{name} must have {length} entries, not {len(values)}")
    return values


def table_width(values) -> int:
    width = 2
    while not all(-(1 << (width - 1)) <= v < (1 << (width - 1)) for v in values):
        width += 1
    return width


def shift_width(values) -> int:
    """Signed width of the per-channel shifts (at least 2 bits: the unit's minimum)."""
    return max(2, table_width(values))


@dataclass(frozen=True)
class MSATTables:
    """An msat layer's ladder as the hardware takes it (the IR's NeuronTables, docs/msat.md §4):
    the layer's tables, and d_shift, x_shift per channel."""
    ladder_steps: int
    lut_half: int
    lut_d: tuple
    lut_x: tuple
    ladder_z: tuple
    d_shift: tuple
    x_shift: tuple
    half_start: bool = False

    def __post_init__(self):
        check_int("ladder_steps", self.ladder_steps, 1)
        check_int("lut_half", self.lut_half, 1)
        for name, length in (("lut_d", 2 * self.lut_half), ("lut_x", 2 * self.lut_half),
                             ("ladder_z", self.ladder_steps)):
            object.__setattr__(self, name, tuple(check_table(name, getattr(self, name), length)))
        z = self.ladder_z
        if any(a <= b for a, b in zip(z, z[1:])):
            raise ValueError(f"ladder_z must be strictly decreasing, not {list(z)!r}")
        for name in ("d_shift", "x_shift"):
            values = np.asarray(getattr(self, name))
            if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
                raise ValueError(f"{name} must be one integer per channel, not {getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(int(v) for v in values))
        if len(self.d_shift) != len(self.x_shift):
            raise ValueError(f"d_shift and x_shift must have one entry per channel, not {len(self.d_shift)} "
                             f"and {len(self.x_shift)}")
        if not isinstance(self.half_start, bool):
            raise ValueError(f"half_start must be True or False, not {self.half_start!r}")

    @property
    def channels(self) -> int:
        return len(self.d_shift)

    @property
    def shift_width(self) -> int:
        return shift_width(self.d_shift + self.x_shift)

    def unit_tables(self) -> dict:
        """The MSATUnit arguments that are the layer's (not per channel)."""
        return dict(ladder_steps=self.ladder_steps, lut_half=self.lut_half, lut_d=list(self.lut_d),
                    lut_x=list(self.lut_x), ladder_z=list(self.ladder_z), half_start=self.half_start)


class MSATUnit(wiring.Component):
    """P-lane MSAT update. The tables (LUT_d, LUT_x, Z) are the layer's; Θ, d_shift and x_shift
    come per lane (per channel). `tag` rides along unchanged. With `half_start` the residual
    at t = 0 is Θ >> 1 instead of 0 (docs/msat.md §3b)."""

    def __init__(self, *, lanes: int, steps: int, ladder_steps: int, lut_half: int, lut_d, lut_x, ladder_z,
                 current_width: int, bias_width: int, membrane_width: int, sum_width: int, theta_width: int,
                 shift_width: int = 4, tag_width: int = 1, half_start: bool = False):
        self.lanes = check_int("lanes", lanes, 1)
        self.steps = check_int("steps", steps, 1)
        self.ladder_steps = check_int("ladder_steps", ladder_steps, 1)
        self.lut_half = check_int("lut_half", lut_half, 1)
        self.lut_d = check_table("lut_d", lut_d, 2 * lut_half)
        self.lut_x = check_table("lut_x", lut_x, 2 * lut_half)
        self.ladder_z = check_table("ladder_z", ladder_z, ladder_steps)
        if any(a <= b for a, b in zip(self.ladder_z, self.ladder_z[1:])):
            raise ValueError(f"ladder_z must be strictly decreasing, not {self.ladder_z!r}")
        self.current_width = check_int("current_width", current_width, 2)
        self.bias_width = check_int("bias_width", bias_width, 1)
        self.membrane_width = check_int("membrane_width", membrane_width, 2)
        self.sum_width = check_int("sum_width", sum_width, 2)
        self.theta_width = check_int("theta_width", theta_width, 2)
        self.shift_width = check_int("shift_width", shift_width, 2)
        self.tag_width = check_int("tag_width", tag_width, 1)
        if not isinstance(half_start, bool):
            raise ValueError(f"half_start must be True or False, not {half_start!r}")
        self.half_start = half_start
        self.t_width = bits_for(steps)
        self.m_width = bits_for(ladder_steps + 1)
        lane_in = data.StructLayout({
            "current": signed(current_width), "bias": signed(bias_width), "membrane": signed(membrane_width),
            "sum": signed(sum_width), "theta": signed(theta_width),
            "d_shift": signed(shift_width), "x_shift": signed(shift_width)})
        lane_out = data.StructLayout({"fire": 1, "m": unsigned(self.m_width), "membrane": signed(membrane_width),
                                      "sum": signed(sum_width)})
        self.in_layout = data.StructLayout({"t": unsigned(self.t_width), "tag": unsigned(tag_width),
                                            "lanes": data.ArrayLayout(lane_in, lanes)})
        self.out_layout = data.StructLayout({"tag": unsigned(tag_width), "lanes": data.ArrayLayout(lane_out, lanes)})
        super().__init__({
            "neurons": In(stream.Signature(self.in_layout)),
            "updates": Out(stream.Signature(self.out_layout)),
        })

    def shifted(self, m, value, shift, name):
        """⌊value / 2^shift⌋ for a signed per-lane shift (a left shift where it is negative)."""
        left, right = Signal(self.shift_width, name=f"{name}_left"), Signal(self.shift_width, name=f"{name}_right")
        m.d.comb += [left.eq(Mux(shift < 0, -shift, 0)), right.eq(Mux(shift > 0, shift, 0))]
        out = Signal(signed(len(value) + (1 << (self.shift_width - 1)) + 1), name=f"{name}_shifted")
        m.d.comb += out.eq(Mux(shift < 0, value << left, value >> right))
        return out

    def clamped(self, m, value, limit, name):
        """`value` clamped to [−limit, limit], in as few bits as that takes."""
        out = Signal(signed(bits_for(limit + 1) + 1), name=f"{name}_clamped")
        m.d.comb += out.eq(Mux(value > limit, limit, Mux(value < -limit, -limit, value)))
        return out

    def d_cell(self, m, q, multiples, name):
        """⌊q / t⌋ + H clamped to [0, 2H − 1]: the boundaries k·t (k = −H+1 … H−1) q reaches."""
        h = self.lut_half
        reached = [q >= -multiples[-k] if k < 0 else q >= multiples[k] for k in range(-h + 1, h)]
        index = Signal(range(2 * h), name=f"{name}_index")
        m.d.comb += index.eq(sum(r.as_unsigned() for r in reached))
        return index

    def x_cell(self, m, q, name):
        """q + H clamped to [0, 2H − 1] (the current's cell: its step is 1 after the shift)."""
        h = self.lut_half
        index = Signal(range(2 * h), name=f"{name}_index")
        m.d.comb += index.eq(Mux(q >= h - 1, 2 * h - 1, Mux(q <= -h, 0, q + h)))
        return index

    def elaborate(self, platform):
        m = Module()
        P = self.lanes
        drive_width = max(self.current_width, self.bias_width) + 1
        u_width = max(self.membrane_width, drive_width, self.theta_width) + 2
        advance = ~self.updates.valid | self.updates.ready
        m.d.comb += self.neurons.ready.eq(advance)
        lut_d_width, lut_x_width = table_width(self.lut_d), table_width(self.lut_x)
        lut_d = Array(Const(v, signed(lut_d_width)) for v in self.lut_d)
        lut_x = Array(Const(v, signed(lut_x_width)) for v in self.lut_x)
        z_width = max(lut_d_width, lut_x_width, table_width(self.ladder_z)) + 1

        # Stage 1: I = current + bias; R and S forced to their start at t = 0.
        valid1 = Signal()
        t1 = Signal(self.t_width)
        tag1 = Signal(self.tag_width)
        inp = self.neurons.payload
        lanes1 = []
        for j in range(P):
            lanes1.append(dict(
                drive=Signal(signed(drive_width), name=f"drive{j}"),
                prev=Signal(signed(self.membrane_width), name=f"prev{j}"),
                sum=Signal(signed(self.sum_width), name=f"sum{j}"),
                theta=Signal(signed(self.theta_width), name=f"theta{j}"),
                d_shift=Signal(signed(self.shift_width), name=f"d_shift{j}"),
                x_shift=Signal(signed(self.shift_width), name=f"x_shift{j}")))
        # The cell boundaries k·t of the beat's step (k = 0 … H−1; the negative ones are −k·t).
        limit = self.lut_half * max(1, self.steps - 1)
        multiples = [Signal(signed(bits_for(limit + 1) + 1), name=f"multiple{k}") for k in range(self.lut_half)]
        with m.If(advance):
            m.d.sync += [valid1.eq(self.neurons.valid), t1.eq(inp.t), tag1.eq(inp.tag)]
            # Shifts and adds, not a product: synthesis would spend a DSP on each k.
            m.d.sync += [multiples[k].eq(sum((inp.t << b for b in range(k.bit_length()) if k >> b & 1), Const(0, 1)))
                         for k in range(self.lut_half)]
            for j, r in enumerate(lanes1):
                lane = inp.lanes[j]
                first = inp.t == 0
                start = lane.theta >> 1 if self.half_start else 0
                m.d.sync += [r["drive"].eq(lane.current + lane.bias), r["prev"].eq(Mux(first, start, lane.membrane)),
                             r["sum"].eq(Mux(first, 0, lane.sum)), r["theta"].eq(lane.theta),
                             r["d_shift"].eq(lane.d_shift), r["x_shift"].eq(lane.x_shift)]

        # Stage 2: the ladder index, the comparison, the subtract reset and the running sum.
        out = self.updates.payload
        with m.If(advance):
            m.d.sync += [self.updates.valid.eq(valid1), out.tag.eq(tag1)]
        t_signed = Signal(signed(self.t_width + 1))
        m.d.comb += t_signed.eq(t1)
        for j, r in enumerate(lanes1):
            n = Signal(signed(self.membrane_width + self.t_width + self.sum_width + 2), name=f"n{j}")
            m.d.comb += n.eq(t_signed * r["prev"] - r["sum"])
            q_d = self.clamped(m, self.shifted(m, n, r["d_shift"], f"d{j}"), limit, f"d{j}")
            i_d = self.d_cell(m, q_d, multiples, f"d{j}")
            q_x = self.clamped(m, self.shifted(m, r["drive"], r["x_shift"], f"x{j}"), self.lut_half, f"x{j}")
            i_x = self.x_cell(m, q_x, f"x{j}")
            z = Signal(signed(z_width), name=f"z{j}")
            m.d.comb += z.eq(lut_d[i_d] + lut_x[i_x])
            rung = Signal(self.m_width, name=f"m{j}")
            m.d.comb += rung.eq(Mux(t1 == 0, 0, sum(z < zj for zj in self.ladder_z)))
            theta = Signal(signed(self.theta_width), name=f"rung{j}")
            m.d.comb += theta.eq(r["theta"] >> rung)
            u = Signal(signed(u_width), name=f"u{j}")
            m.d.comb += u.eq(r["prev"] + r["drive"])
            fire = u >= theta
            residual = Signal(signed(u_width), name=f"residual{j}")
            m.d.comb += residual.eq(Mux(fire, u - theta, u))
            with m.If(advance):
                m.d.sync += [out.lanes[j].fire.eq(fire), out.lanes[j].m.eq(rung),
                             out.lanes[j].membrane.eq(residual), out.lanes[j].sum.eq(r["sum"] + residual)]
        return m
