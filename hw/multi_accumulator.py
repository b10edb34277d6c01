"""Synaptic accumulator of a layer that reads several projections (docs/hardware.md,
"Graph-shaped hardware"): every projection's events are added into ONE current memory.

    events (addr, neg, proj) ──► decode: every projection's decode in parallel on the same
                                 registered address, the event's own one selected at the end
                             ──► walker (one op per cycle, the projection's steps)
                             ──► read-modify-write, exactly hw.accumulator.Accumulator's

The projections' weights share one weight memory, one section after another (a conv or
dense section as in Accumulator; an identity section has one word per channel group, word
g holding w[g·P + j] in lane j). An identity event is one op: the current word of its
position in its channel's group, with a one-hot lane mask that zeroes the other lanes'
contributions. Conv and dense events walk as in Accumulator.

A projection from an msat layer (`ladder_steps` M_i > 0, docs/msat.md §3b) has events of
address + m bits (hw.event): its decode takes the address from the low bits and the shift
M_i − m from the bits above, and its op adds W << (M_i − m).
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.accumulator import Accumulator, axis_tables, check_ladder_steps, check_weights, magic_divider, weight_words
from hw.event import bits_for, ladder_bits
from hw.geometry import ConvGeometry, DenseGeometry, check_lanes
from hw.lif import check_int
from hw.projection import IdentityGeometry, check_projections, out_shape

DECODE_STAGES = 4


def identity_words(weights, lanes: int) -> list[list[int]]:
    """Identity section: word g holds w[g·P + j] in lane j."""
    return [[int(weights[g * lanes + j]) for j in range(lanes)] for g in range(len(weights) // lanes)]


class MultiAccumulator(Accumulator):
    """P-lane accumulator over several projections (hw.projection.Projection) that write the
    same layer. Ports as Accumulator's, with `proj` (the projection's index) in `events`."""

    def __init__(self, projections, *, lanes: int, weight_width: int, current_width: int, ladder_steps=None):
        self.projections = check_projections(projections)
        channels, height, width = out_shape(self.projections[0].geometry)
        self.lanes = check_lanes(lanes, channels)
        self.weight_width = check_int("weight_width", weight_width, 2)
        self.current_width = check_int("current_width", current_width, 2)
        self.mode = "spike"
        ladders = [0] * len(self.projections) if ladder_steps is None else list(ladder_steps)
        if len(ladders) != len(self.projections):
            raise ValueError(f"ladder_steps must give one M per projection ({len(self.projections)}), "
                             f"not {ladder_steps!r}")
        self.ladders = [check_ladder_steps(v, "spike") for v in ladders]
        self.ladder_steps = max(self.ladders)       # the widest shift any op takes
        self.weight_sets = [check_weights(p.weights, p.geometry, weight_width) for p in self.projections]
        self.groups = channels // lanes
        self.positions = height * width
        self.out_width = width
        self.current_depth = self.groups * self.positions
        self.current_addr_width = bits_for(self.current_depth)
        sections = [self.section_words(p.geometry, w) for p, w in zip(self.projections, self.weight_sets)]
        self.weight_bases = [sum(len(s) for s in sections[:i]) for i in range(len(sections))]
        self.sections = sections
        self.weight_depth = sum(len(s) for s in sections)
        # Each projection's address bits, and its events' width (the address, then m).
        self.in_addr_widths = [bits_for(p.geometry.in_size) for p in self.projections]
        self.addr_width = max(a + ladder_bits(v) for a, v in zip(self.in_addr_widths, self.ladders))
        self.has_identity = any(isinstance(p.geometry, IdentityGeometry) for p in self.projections)
        self.max_kernel = max([p.geometry.kernel for p in self.projections if p.geometry.is_conv] or [1])
        self.current_shape = data.ArrayLayout(signed(current_width), lanes)
        self.event_layout = data.StructLayout({"addr": unsigned(self.addr_width), "neg": 1,
                                               "proj": unsigned(bits_for(len(self.projections)))})
        wiring.Component.__init__(self, {
            "events": In(stream.Signature(self.event_layout)),
            "idle": Out(1),
            "sweep_en": In(1),
            "sweep_clear": In(1),
            "sweep_addr": In(self.current_addr_width),
            "sweep_data": Out(self.current_shape),
        })

    def section_words(self, geometry, weights):
        if isinstance(geometry, IdentityGeometry):
            return identity_words(weights, self.lanes)
        return weight_words(weights, self.lanes)

    def weight_init(self):
        return [word for section in self.sections for word in section]

    def walk_layout(self):
        fields = {
            "w_base": unsigned(bits_for(self.weight_depth)),
            "c_base": unsigned(self.current_addr_width),
            "rows": unsigned(bits_for(self.max_kernel + 1)),
            "cols": unsigned(bits_for(self.max_kernel + 1)),
            "sign": self.sign_shape(),
            "proj": self.event_layout.members["proj"],
        }
        if self.has_identity:
            fields.update(single=unsigned(1), mask=unsigned(self.lanes))
        return data.StructLayout(fields)

    # -- decode: every projection in parallel, the event's own selected at the end -----------

    def decode(self, m):
        out = stream.Signature(self.walk_layout()).create()
        advance = ~out.valid | out.ready
        m.d.comb += self.events.ready.eq(advance)
        valid = [Signal(name=f"dec_valid{i}") for i in range(DECODE_STAGES)]
        proj = [Signal.like(self.events.payload.proj, name=f"dec_proj{i}") for i in range(DECODE_STAGES)]
        sign = [Signal(self.sign_shape(), name=f"dec_sign{i}") for i in range(DECODE_STAGES)]
        addr = [Signal(self.addr_width, name=f"dec_addr{i}") for i in range(DECODE_STAGES)]
        with m.If(advance):
            ev = self.events.payload
            address, sign0 = ev.addr, ev.neg
            if self.ladder_steps:       # split each projection's event into its address and shift
                address = Array(ev.addr[:a] for a in self.in_addr_widths)[ev.proj]
                shifts = Array((M - ev.addr[a:a + ladder_bits(M)])[:ladder_bits(self.ladder_steps)] if M else 0
                               for a, M in zip(self.in_addr_widths, self.ladders))
                sign0 = Cat(ev.neg, shifts[ev.proj])
            m.d.sync += [valid[0].eq(self.events.valid), proj[0].eq(ev.proj), sign[0].eq(sign0),
                         addr[0].eq(address)]
            for i in range(1, DECODE_STAGES):
                m.d.sync += [valid[i].eq(valid[i - 1]), proj[i].eq(proj[i - 1]),
                             sign[i].eq(sign[i - 1]), addr[i].eq(addr[i - 1])]
        fields = [self.decode_projection(m, i, p.geometry, addr, advance)
                  for i, p in enumerate(self.projections)]
        with m.If(advance):
            m.d.sync += [out.valid.eq(valid[3]), out.payload.sign.eq(sign[3]), out.payload.proj.eq(proj[3])]
            with m.Switch(proj[3]):
                for i, f in enumerate(fields):
                    with m.Case(i):
                        m.d.sync += [getattr(out.payload, name).eq(value) for name, value in f.items()]
        self.decode_busy = Cat(*valid).any() | out.valid
        return out

    def decode_projection(self, m, i, g, addr, advance):
        """Registered stages 1–3 of projection i's decode on addr[0..2]; returns the walk
        fields as expressions of its stage-3 registers (registered once more by decode)."""
        base = self.weight_bases[i]
        all_lanes = (1 << self.lanes) - 1
        extra = {"single": 0, "mask": all_lanes} if self.has_identity else {}
        if isinstance(g, DenseGeometry):
            return {"w_base": base + addr[3], "c_base": 0, "rows": 1, "cols": 1, **extra}
        if isinstance(g, IdentityGeometry):
            hw_size = g.out_positions
            m_c, s_c = magic_divider(hw_size, g.in_size)
            m_p, s_p = magic_divider(self.lanes, g.channels)
            c1, c2 = (Signal(range(max(2, g.channels)), name=f"id{i}_c{s}") for s in (1, 2))
            g2, g3 = (Signal(range(max(2, self.groups)), name=f"id{i}_g{s}") for s in (2, 3))
            rem2, rem3 = (Signal(range(max(2, hw_size)), name=f"id{i}_rem{s}") for s in (2, 3))
            lane3 = Signal(range(max(2, self.lanes)), name=f"id{i}_lane3")
            with m.If(advance):
                m.d.sync += [c1.eq((addr[0] * m_c) >> s_c),
                             c2.eq(c1), rem2.eq(addr[1] - c1 * hw_size), g2.eq((c1 * m_p) >> s_p),
                             g3.eq(g2), rem3.eq(rem2), lane3.eq(c2 - g2 * self.lanes)]
            mask = Cat(*(lane3 == j for j in range(self.lanes)))
            return {"w_base": base + g3, "c_base": g3 * hw_size + rem3, "rows": 1, "cols": 1,
                    "single": 1, "mask": mask}
        assert isinstance(g, ConvGeometry)
        hw_size = g.in_height * g.in_width
        m_c, s_c = magic_divider(hw_size, g.in_size)
        m_y, s_y = magic_divider(g.in_width, hw_size)
        c1, c2, c3 = (Signal(range(max(2, g.in_channels)), name=f"cv{i}_c{s}") for s in (1, 2, 3))
        rem2 = Signal(range(max(2, hw_size)), name=f"cv{i}_rem2")
        y3 = Signal(range(max(2, g.in_height)), name=f"cv{i}_y3")
        x3 = Signal(range(max(2, g.in_width)), name=f"cv{i}_x3")
        # (at least 1 bit: a 1×1 kernel's tap indices are all 0, and a 0-bit wire lints badly)
        oy0, ky0, nrows = (Array(Const(v, range(max(2, max(t) + 1))) for v in t)
                           for t in axis_tables(g, g.in_height, g.out_height))
        ox0, kx0, ncols = (Array(Const(v, range(max(2, max(t) + 1))) for v in t)
                           for t in axis_tables(g, g.in_width, g.out_width))
        with m.If(advance):
            m.d.sync += [c1.eq((addr[0] * m_c) >> s_c),
                         c2.eq(c1), rem2.eq(addr[1] - c1 * hw_size),
                         c3.eq(c2), y3.eq((rem2 * m_y) >> s_y),
                         x3.eq(rem2 - ((rem2 * m_y) >> s_y) * g.in_width)]
        return {"w_base": base + (c3 * g.kernel + ky0[y3]) * g.kernel + kx0[x3],
                "c_base": oy0[y3] * g.out_width + ox0[x3],
                "rows": nrows[y3], "cols": ncols[x3], **extra}

    # -- walk: one (tap, group) op per cycle, the projection's own steps ---------------------

    def walk(self, m, walks):
        w_width, c_width = bits_for(self.weight_depth), self.current_addr_width
        geometries = [p.geometry for p in self.projections]

        def table(values):
            return Array(Const(v, unsigned(w_width)) for v in values)

        # Weight address steps per projection: next group, next kernel column, next row.
        w_group = table([g.fan_in for g in geometries])
        w_col_step = table([g.stride if g.is_conv else 0 for g in geometries])
        w_row_step = table([g.stride * g.kernel if g.is_conv else 0 for g in geometries])
        c_step_row = self.out_width

        active = Signal()
        p = walks.payload
        sign, proj = Signal.like(p.sign), Signal.like(p.proj)
        single = Signal()
        w_cur, w_col, w_row = (Signal(w_width, name=n) for n in ("w_cur", "w_col", "w_row"))
        c_cur, c_col, c_row = (Signal(c_width, name=n) for n in ("c_cur", "c_col", "c_row"))
        gi = Signal(range(max(2, self.groups)))
        xi, yi = Signal.like(p.cols), Signal.like(p.rows)
        cols, rows = Signal.like(p.cols), Signal.like(p.rows)

        last_group = (gi == self.groups - 1) | single
        last_col = xi == cols - 1
        last_row = yi == rows - 1
        last = active & last_group & last_col & last_row
        m.d.comb += walks.ready.eq(~active | last)
        if self.has_identity:
            self.op_mask = Signal(self.lanes)
            with m.If(walks.valid & walks.ready):
                m.d.sync += [single.eq(p.single), self.op_mask.eq(p.mask)]

        with m.If(walks.valid & walks.ready):
            m.d.sync += [
                active.eq((p.rows != 0) & (p.cols != 0)), sign.eq(p.sign), proj.eq(p.proj),
                w_cur.eq(p.w_base), w_col.eq(p.w_base), w_row.eq(p.w_base),
                c_cur.eq(p.c_base), c_col.eq(p.c_base), c_row.eq(p.c_base),
                gi.eq(0), xi.eq(0), yi.eq(0), rows.eq(p.rows), cols.eq(p.cols),
            ]
        with m.Elif(last):
            m.d.sync += active.eq(0)
        with m.Elif(active & ~last_group):
            m.d.sync += [gi.eq(gi + 1), w_cur.eq(w_cur + w_group[proj]),
                         c_cur.eq(c_cur + self.positions)]
        with m.Elif(active & ~last_col):
            step = w_col_step[proj]
            m.d.sync += [gi.eq(0), xi.eq(xi + 1),
                         w_col.eq(w_col - step), w_cur.eq(w_col - step),
                         c_col.eq(c_col + 1), c_cur.eq(c_col + 1)]
        with m.Elif(active):
            step = w_row_step[proj]
            m.d.sync += [gi.eq(0), xi.eq(0), yi.eq(yi + 1),
                         w_row.eq(w_row - step), w_col.eq(w_row - step), w_cur.eq(w_row - step),
                         c_row.eq(c_row + c_step_row), c_col.eq(c_row + c_step_row),
                         c_cur.eq(c_row + c_step_row)]
        return active, w_cur, c_cur, sign
