"""Synaptic accumulator: P lanes of ±weight (spike mode) or weight × pixel (pixel mode)
added into the current memory, P synaptic ops per cycle.

    events ──► decode (addr → c, y, x → first tap, tap counts, base addresses)
           ──► walker (one op per cycle: valid kernel tap × channel group)
           ──► read-modify-write on the P-wide current memory

Four registered stages, one op per cycle: weight address; weights (and the current's
read issued); contribution and current registered; write back. The current read is
transparent to the write port, and the one write it cannot see (the op just ahead) is
forwarded, so back-to-back ops on one address see each other's result. The same memory
ports serve the LIF sweep (`sweep_*`), which the engine only drives while `idle` is high.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.event import bits_for, ladder_bits
from hw.geometry import check_geometry, check_lanes
from hw.lif import check_int

ACCUMULATOR_MODES = ("spike", "pixel")
MAX_LADDER_STEPS = 16       # gen.ir's cap on an msat layer's M
PIXEL_BITS = 8


def check_mode(mode):
    if mode not in ACCUMULATOR_MODES:
        raise ValueError(f"mode must be one of {', '.join(ACCUMULATOR_MODES)}, not {mode!r}")
    return mode


def check_weights(weights, geometry, weight_width) -> np.ndarray:
    w = np.asarray(weights)
    if w.shape != tuple(geometry.weight_shape):
        raise ValueError(f"weights must have shape {tuple(geometry.weight_shape)}, not {w.shape!r}")
    if w.size and not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"weights must be integers, not {w.dtype!r}")
    low, high = -(1 << (weight_width - 1)), (1 << (weight_width - 1)) - 1
    if w.size and (w.min() < low or w.max() > high):
        raise ValueError(f"weights must lie in [{low}, {high}] for weight_width {weight_width}, "
                         f"not [{w.min()}, {w.max()}]")
    return w.astype(np.int64)


def check_ladder_steps(ladder_steps, mode: str) -> int:
    """M of the source's ladder (0: ternary or binary events); only spike events carry m."""
    check_int("ladder_steps", ladder_steps, 0, f"an integer in [0, {MAX_LADDER_STEPS}]")
    if ladder_steps > MAX_LADDER_STEPS:
        raise ValueError(f"ladder_steps must be an integer in [0, {MAX_LADDER_STEPS}], not {ladder_steps!r}")
    if ladder_steps and mode != "spike":
        raise ValueError(f"ladder_steps is for spike events, not mode {mode!r}")
    return ladder_steps


def magic_divider(divisor: int, limit: int) -> tuple[int, int]:
    """(M, S) with (a·M) >> S == a // divisor for every 0 <= a < limit (checked exhaustively)."""
    if divisor == 1:
        return 1, 0
    a = np.arange(limit, dtype=object)
    for shift in range(bits_for(limit), 2 * bits_for(limit) + bits_for(divisor) + 2):
        mult = -(-(1 << shift) // divisor)
        if all((a * mult) >> shift == a // divisor):
            return mult, shift
    raise RuntimeError(f"no reciprocal for {divisor} below {limit}")  # cannot happen


def weight_words(weights: np.ndarray, lanes: int) -> list[list[int]]:
    """Weight memory init: word g·fan_in + f holds W[g·P + j].flat[f] in lane j."""
    flat = weights.reshape(weights.shape[0], -1)
    groups = flat.shape[0] // lanes
    return [[int(flat[g * lanes + j, f]) for j in range(lanes)]
            for g in range(groups) for f in range(flat.shape[1])]


def axis_tables(geometry, length, out_len):
    """Per input coordinate: (first output coord, its kernel index, number of valid taps)."""
    first, kidx, count = [], [], []
    for coord in range(length):
        taps = geometry.axis_taps(coord, out_len)
        first.append(taps[0][0] if taps else 0)
        kidx.append(taps[0][1] if taps else 0)
        count.append(len(taps))
    return first, kidx, count


class Accumulator(wiring.Component):
    """P-lane synaptic accumulator with its weight and current memories.

    Ports: `events` (in: addr + neg in spike mode, addr + 8-bit value in pixel mode; with
    `ladder_steps` M > 0, the events of an msat source, also its ladder index m: the op adds
    W << (M − m), docs/msat.md §3b),
    `idle` (no event in flight), and the sweep port: `sweep_en`/`sweep_addr` read a
    P-lane word of currents, which appears on `sweep_data` one cycle later; with
    `sweep_clear` the word is zeroed in the same pass.
    """

    def __init__(self, geometry, weights, *, lanes: int, weight_width: int, current_width: int,
                 mode: str = "spike", ladder_steps: int = 0):
        self.geometry = check_geometry(geometry)
        self.lanes = check_lanes(lanes, geometry.out_channels)
        self.weight_width = check_int("weight_width", weight_width, 2)
        self.current_width = check_int("current_width", current_width, 2)
        self.mode = check_mode(mode)
        self.ladder_steps = check_ladder_steps(ladder_steps, mode)
        self.weights = check_weights(weights, geometry, weight_width)
        self.groups = geometry.out_channels // lanes
        self.addr_width = bits_for(geometry.in_size)
        self.current_depth = self.groups * geometry.out_positions
        self.current_addr_width = bits_for(self.current_depth)
        self.weight_depth = self.groups * geometry.fan_in
        self.current_shape = data.ArrayLayout(signed(current_width), lanes)
        field = {"neg": 1} if mode == "spike" else {"value": unsigned(PIXEL_BITS)}
        if self.ladder_steps:
            field["m"] = unsigned(ladder_bits(self.ladder_steps))
        self.event_layout = data.StructLayout({"addr": unsigned(self.addr_width), **field})
        super().__init__({
            "events": In(stream.Signature(self.event_layout)),
            "idle": Out(1),
            "sweep_en": In(1),
            "sweep_clear": In(1),
            "sweep_addr": In(self.current_addr_width),
            "sweep_data": Out(self.current_shape),
        })

    # -- decode: flat input address -> walk description -------------------------------------

    def walk_layout(self):
        return data.StructLayout({
            "w_base": unsigned(bits_for(self.weight_depth)),
            "c_base": unsigned(self.current_addr_width),
            "rows": unsigned(bits_for(self.geometry.kernel + 1) if self.geometry.is_conv else 1),
            "cols": unsigned(bits_for(self.geometry.kernel + 1) if self.geometry.is_conv else 1),
            "sign": self.sign_shape(),
        })

    def sign_shape(self):
        """What an op needs of its event beyond the address: neg (with an msat source, and the
        shift M − m of its rung: Cat(neg, shift)), or the pixel."""
        if self.mode == "pixel":
            return unsigned(PIXEL_BITS)
        return unsigned(1 + ladder_bits(self.ladder_steps))

    def sign_of(self, payload):
        if self.mode == "pixel":
            return payload.value
        if not self.ladder_steps:
            return payload.neg
        return Cat(payload.neg, (self.ladder_steps - payload.m)[:ladder_bits(self.ladder_steps)])

    def spike_contribution(self, weight, sign):
        """±W, or ±W << (M − m) for an msat source (a mux over the M + 1 shifts, no barrel shifter)."""
        if not self.ladder_steps:
            return Mux(sign, -weight, weight)
        neg, shift = sign[0], sign[1:]
        shifted = Array(weight << k for k in range(self.ladder_steps + 1))[shift]
        return Mux(neg, -shifted, shifted)

    def contribution_width(self) -> int:
        """Bits of one lane's contribution: ±W (<< M for an msat source), or W × pixel."""
        if self.mode == "pixel":
            return self.weight_width + PIXEL_BITS + 1
        return self.weight_width + self.ladder_steps + 1

    def decode(self, m):
        """A stalling stream pipeline from `events` to walk descriptions (returns its output)."""
        out = stream.Signature(self.walk_layout()).create()
        g = self.geometry
        if not g.is_conv:
            m.d.comb += [
                out.valid.eq(self.events.valid), self.events.ready.eq(out.ready),
                out.payload.w_base.eq(self.events.payload.addr), out.payload.c_base.eq(0),
                out.payload.rows.eq(1), out.payload.cols.eq(1),
                out.payload.sign.eq(self.sign_of(self.events.payload)),
            ]
            return out
        hw_size = g.in_height * g.in_width
        m_c, s_c = magic_divider(hw_size, g.in_size)
        m_y, s_y = magic_divider(g.in_width, hw_size)
        advance = ~out.valid | out.ready
        m.d.comb += self.events.ready.eq(advance)
        # Four stages, the event registered first: the address may come straight out of a
        # queue's block RAM, which must not drive the reciprocal multiply in the same cycle.
        valid = [Signal(name=f"dec_valid{i}") for i in range(4)]
        a0, a1 = Signal(self.addr_width), Signal(self.addr_width)
        c1, c2, c3 = (Signal(range(max(2, g.in_channels)), name=f"dec_c{i}") for i in (1, 2, 3))
        rem2 = Signal(range(max(2, hw_size)))
        y3, x3 = Signal(range(max(2, g.in_height))), Signal(range(max(2, g.in_width)))
        sign = [Signal(self.sign_shape(), name=f"dec_sign{i}") for i in range(4)]
        rows = axis_tables(g, g.in_height, g.out_height)
        cols = axis_tables(g, g.in_width, g.out_width)
        oy0, ky0, nrows = (Array(Const(v, range(max(t) + 1)) for v in t) for t in rows)
        ox0, kx0, ncols = (Array(Const(v, range(max(t) + 1)) for v in t) for t in cols)
        with m.If(advance):
            m.d.sync += [
                valid[0].eq(self.events.valid), sign[0].eq(self.sign_of(self.events.payload)),
                a0.eq(self.events.payload.addr),
                valid[1].eq(valid[0]), sign[1].eq(sign[0]), a1.eq(a0), c1.eq((a0 * m_c) >> s_c),
                valid[2].eq(valid[1]), sign[2].eq(sign[1]), c2.eq(c1), rem2.eq(a1 - c1 * hw_size),
                valid[3].eq(valid[2]), sign[3].eq(sign[2]), c3.eq(c2),
                y3.eq((rem2 * m_y) >> s_y), x3.eq(rem2 - ((rem2 * m_y) >> s_y) * g.in_width),
                out.valid.eq(valid[3]),
                out.payload.sign.eq(sign[3]),
                out.payload.w_base.eq((c3 * g.kernel + ky0[y3]) * g.kernel + kx0[x3]),
                out.payload.c_base.eq(oy0[y3] * g.out_width + ox0[x3]),
                out.payload.rows.eq(nrows[y3]), out.payload.cols.eq(ncols[x3]),
            ]
        self.decode_busy = valid[0] | valid[1] | valid[2] | valid[3] | out.valid
        return out

    # -- walk: one (tap, group) op per cycle -----------------------------------------------

    def walk(self, m, walks):
        g = self.geometry
        w_width, c_width = bits_for(self.weight_depth), self.current_addr_width
        active = Signal()
        sign = Signal.like(walks.payload.sign)
        w_cur, w_col, w_row = (Signal(w_width, name=n) for n in ("w_cur", "w_col", "w_row"))
        c_cur, c_col, c_row = (Signal(c_width, name=n) for n in ("c_cur", "c_col", "c_row"))
        gi = Signal(range(max(2, self.groups)))
        xi, yi = Signal.like(walks.payload.cols), Signal.like(walks.payload.rows)
        cols, rows = Signal.like(walks.payload.cols), Signal.like(walks.payload.rows)

        last_group = gi == self.groups - 1
        last_col = xi == cols - 1
        last_row = yi == rows - 1
        last = active & last_group & last_col & last_row
        m.d.comb += walks.ready.eq(~active | last)
        w_step_col = g.stride if g.is_conv else 0
        w_step_row = g.stride * g.kernel if g.is_conv else 0
        c_step_row = g.out_width if g.is_conv else 0

        with m.If(walks.valid & walks.ready):
            p = walks.payload
            m.d.sync += [
                active.eq((p.rows != 0) & (p.cols != 0)), sign.eq(p.sign),
                w_cur.eq(p.w_base), w_col.eq(p.w_base), w_row.eq(p.w_base),
                c_cur.eq(p.c_base), c_col.eq(p.c_base), c_row.eq(p.c_base),
                gi.eq(0), xi.eq(0), yi.eq(0), rows.eq(p.rows), cols.eq(p.cols),
            ]
        with m.Elif(last):
            m.d.sync += active.eq(0)
        with m.Elif(active & ~last_group):
            m.d.sync += [gi.eq(gi + 1), w_cur.eq(w_cur + g.fan_in), c_cur.eq(c_cur + g.out_positions)]
        with m.Elif(active & ~last_col):
            m.d.sync += [gi.eq(0), xi.eq(xi + 1),
                         w_col.eq(w_col - w_step_col), w_cur.eq(w_col - w_step_col),
                         c_col.eq(c_col + 1), c_cur.eq(c_col + 1)]
        with m.Elif(active):
            m.d.sync += [gi.eq(0), xi.eq(0), yi.eq(yi + 1),
                         w_row.eq(w_row - w_step_row), w_col.eq(w_row - w_step_row),
                         w_cur.eq(w_row - w_step_row),
                         c_row.eq(c_row + c_step_row), c_col.eq(c_row + c_step_row),
                         c_cur.eq(c_row + c_step_row)]
        return active, w_cur, c_cur, sign

    # -- read-modify-write ------------------------------------------------------------------

    def weight_init(self) -> list[list[int]]:
        return weight_words(self.weights, self.lanes)

    def elaborate(self, platform):
        m = Module()
        self.decode_busy = Const(0)
        self.op_mask = None     # a walk that writes only some lanes sets it (hw.multi_accumulator)
        walks = self.decode(m)
        op_valid, op_w, op_c, op_sign = self.walk(m, walks)

        m.submodules.weights = wmem = Memory(
            shape=data.ArrayLayout(signed(self.weight_width), self.lanes), depth=max(2, self.weight_depth),
            init=self.weight_init())
        # (a depth of 1 would give a 0-bit address port: memories hold at least 2 words)
        m.submodules.currents = cmem = Memory(shape=self.current_shape, depth=max(2, self.current_depth), init=[])
        w_rd = wmem.read_port()
        c_wr = cmem.write_port()
        c_rd = cmem.read_port(transparent_for=[c_wr])
        m.d.comb += [w_rd.addr.eq(op_w), w_rd.en.eq(1), self.sweep_data.eq(c_rd.data)]

        # One op per cycle through four registered stages, so that no cycle holds more than
        # one slow thing (a BRAM's clock-to-output and its cascade multiplexer, a multiply,
        # an adder's carry chain):
        #   0: the walker presents the weight address;
        #   1: the weights arrive and are registered; the current's read is issued;
        #   2: the contribution (±w, or w × pixel on a DSP) is formed and registered, and the
        #      current arrives and is registered;
        #   3: current + contribution is written back.
        # The read issued in stage 1 sees every write up to that cycle (the port is
        # transparent to the write port) but not the one of the next cycle, which belongs to
        # the op just ahead: when that write hit the same address its data is forwarded.
        valid1, valid2, valid3 = Signal(), Signal(), Signal()
        c1, c2, c3 = Signal.like(op_c), Signal.like(op_c), Signal.like(op_c)
        sign1, sign2 = Signal.like(op_sign), Signal.like(op_sign)
        weight2 = Signal.like(w_rd.data)
        current3 = Signal(self.current_shape)
        clear1 = Signal()
        m.d.sync += [valid1.eq(op_valid), c1.eq(op_c), sign1.eq(op_sign),
                     clear1.eq(self.sweep_en & self.sweep_clear),
                     valid2.eq(valid1), c2.eq(c1), sign2.eq(sign1), weight2.eq(w_rd.data),
                     valid3.eq(valid2), c3.eq(c2), current3.eq(c_rd.data)]
        shape = signed(self.contribution_width())
        if self.mode == "spike" and self.op_mask is not None:
            mask1, mask2 = Signal.like(self.op_mask), Signal.like(self.op_mask)
            m.d.sync += [mask1.eq(self.op_mask), mask2.eq(mask1)]
            contribution = [Signal(shape, name=f"contribution{j}") for j in range(self.lanes)]
            m.d.sync += [contribution[j].eq(Mux(mask2[j], self.spike_contribution(weight2[j], sign2), 0))
                         for j in range(self.lanes)]
        elif self.mode == "spike":
            contribution = [Signal(shape, name=f"contribution{j}") for j in range(self.lanes)]
            m.d.sync += [contribution[j].eq(self.spike_contribution(weight2[j], sign2)) for j in range(self.lanes)]
        else:
            contribution = [Signal(shape, name=f"product{j}") for j in range(self.lanes)]
            m.d.sync += [contribution[j].eq(weight2[j] * sign2) for j in range(self.lanes)]
        m.d.comb += [c_rd.addr.eq(Mux(self.sweep_en, self.sweep_addr, c1)), c_rd.en.eq(1)]
        busy = op_valid | valid1 | valid2 | valid3

        last_en = Signal()
        last_addr = Signal.like(c_wr.addr)
        last_data = Signal(self.current_shape)
        m.d.sync += [last_en.eq(c_wr.en), last_addr.eq(c_wr.addr), last_data.eq(c_wr.data)]
        current = self.current_shape(Mux(last_en & (last_addr == c3), last_data, current3))

        sweep_addr1 = Signal.like(self.sweep_addr)
        m.d.sync += sweep_addr1.eq(self.sweep_addr)
        with m.If(valid3):
            m.d.comb += [c_wr.en.eq(1), c_wr.addr.eq(c3)]
            m.d.comb += [c_wr.data[j].eq(current[j] + contribution[j]) for j in range(self.lanes)]
        with m.Elif(clear1):
            m.d.comb += [c_wr.en.eq(1), c_wr.addr.eq(sweep_addr1)]
            m.d.comb += [c_wr.data[j].eq(0) for j in range(self.lanes)]
        m.d.comb += self.idle.eq(~busy & ~walks.valid & ~self.decode_busy)
        return m
