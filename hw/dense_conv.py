"""DenseConvLayer: a dense streaming conv engine for a spiking layer (docs/hardware.md,
"Dense streaming engines"). Multiplier-free and exact (SPEC §4).

    maps_in ──► line buffer (S rows) ──► k×k window ──► PO lanes × C·k·k taps (±w / 0)
            ──► pipelined adder trees ──► LIFUnit (hw/lif.py) ◄─► membranes ──► maps (out)

Input and output are dense ternary map streams (hw/ternary_stream.py: one position, all
channels, per beat, in (t, y, x) order). The weights are constants: every tap of every
lane selects +w, −w or 0 from its 2-bit spike, so synthesis makes each a few LUTs and
nothing is multiplied. PO lanes compute PO output channels at once; the O/PO channel
groups of one output position are computed in O/PO consecutive cycles over the same
window (the time-sharing factor F = O/PO).

Schedule (data-independent): per output row oy, the window slides over the
n_cols = (W_out − 1)·s + k padded columns starting at x = −p, one column per cycle, and
dwells F cycles (one per group) at each column that completes a window, so a row takes
n_cols + W_out·(F − 1) issue cycles. A row is started once every input row it needs is in
the line buffer; the writer takes one input beat per cycle while the buffer has a free row
(S rows: the k of the window plus s for the next output row). `schedule_cycles` replays
exactly this control in Python: it is the engine's cycle count.

Back-pressure stops the issue, never the pipeline behind it: the issue holds a credit for every
window it emits until its beat leaves the output FIFO (or, for a group other than the last, its
spikes are held), and it waits while the credits in flight would not fit the FIFO
(`output_fifo_depth`: deep enough that credits never throttle an unstalled stream). A stall
wired from the FIFO to every pipeline register was ECP5 conv2's critical path (out FIFO →
LIF ready → the enables of the window and tree registers: 10 ns of routing).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fifo import StreamFIFO
from hw.geometry import ConvGeometry, check_lanes
from hw.lif import LIFUnit, check_int, check_kind
from hw.sweep import check_channel_ints, signed_width
from hw.ternary_stream import map_layout, map_signature

INPUT_KINDS = ("spikes", "pixels")
PIXEL_MAX = 255

TREE_LEVELS_PER_STAGE = 2      # adder-tree levels between pipeline registers
LEAF_INPUTS = 6                # a leaf of the adder tree is one LUT6 per bit (spike_leaves)
MIN_NEURON_WORDS = 4           # a membrane word is read again >= this many emits after its write
LIF_STAGES = 2


def check_conv_geometry(geometry) -> ConvGeometry:
    if not isinstance(geometry, ConvGeometry):
        raise TypeError(f"geometry must be a ConvGeometry, not {geometry!r}")
    return geometry


def pixel_map_layout(channels: int) -> data.StructLayout:
    """A map stream of uint8 pixels (the encoding layer's input): one position, C channels
    per beat, the field named `spikes` like the spike map's so that one datapath takes both."""
    check_int("channels", channels, 1)
    return data.StructLayout({"spikes": data.ArrayLayout(unsigned(8), channels), "eos": 1, "eoi": 1})


def default_buffer_rows(kernel: int, stride: int) -> int:
    """The line buffer's rows: the k of a window plus s for the next output row, rounded up to
    a power of two (the row slot is the low bits of a row counter)."""
    rows = kernel + stride
    return 1 << (rows - 1).bit_length()


def check_buffer_rows(rows, kernel: int) -> int:
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < kernel or rows & (rows - 1):
        raise ValueError(f"buffer_rows must be a power of two >= the kernel ({kernel}), not {rows!r}")
    return rows


def check_neurons(out_channels, bias, theta_pos, theta_neg, kind):
    """bias, θ⁺, θ⁻ per channel (θ⁻ may be None for a binary neuron), as lists of ints."""
    bias = check_channel_ints("bias", bias, out_channels)
    theta_pos = check_channel_ints("theta_pos", theta_pos, out_channels)
    kind = check_kind(kind)
    if kind == "binary" and theta_neg is None:
        theta_neg = [-p for p in theta_pos]
    theta_neg = check_channel_ints("theta_neg", theta_neg, out_channels)
    if kind == "ternary" and any(n >= p for n, p in zip(theta_neg, theta_pos)):
        raise ValueError(f"theta_neg must be below theta_pos in every channel, not {theta_neg!r} vs {theta_pos!r}")
    return bias, theta_pos, theta_neg


def check_weights(weights, shape, weight_width) -> np.ndarray:
    w = np.asarray(weights)
    if w.shape != tuple(shape):
        raise ValueError(f"weights must have shape {tuple(shape)!r}, not {w.shape!r}")
    if w.size and not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"weights must be integers, not {w.dtype!r}")
    limit = 1 << (weight_width - 1)
    if w.size and (w.min() < -limit or w.max() >= limit):
        raise ValueError(f"weights must fit weight_width = {weight_width} bits, not [{w.min()}, {w.max()}]")
    return w.astype(np.int64)


def tap_value(spike, weight):
    """+w, −w or 0 from a 2-bit spike (fire, neg): the LUT that replaces a multiplier."""
    return Mux(spike.fire, Mux(spike.neg, -weight, weight), 0)


def spike_leaves(taps, group, groups: int):
    """The leaves of one lane's adder tree from its spike taps [(2-bit spike, [weight of each
    group])]: every leaf is a LUT that adds up to `taps_per_leaf(groups)` taps at once.

    A leaf's value is a function of its taps' spikes and the group index only (the weights
    are constants), so as a table of 2^(2·taps + group bits) <= 64 entries each of its bits
    is one LUT6, where a ±w/0 select per tap and an adder between them would cost a LUT per
    bit for each. Taps whose weight is 0 in every group add nothing and are left out (see
    `leaf_chunks`). Returns (leaves, bounds: |leaf| <= bound)."""
    group_bits = (groups - 1).bit_length()
    leaves, bounds = [], []
    for chunk in leaf_chunks([values for _, values in taps], groups):
        chunk = [taps[i] for i in chunk]
        if not table_leaves(groups):
            # More than 16 groups: a table would take several LUT6 per bit; the weight's choice
            # (one LUT6 per bit up to 64 groups) and the ±w/0 select cost less.
            (spike, values), = chunk
            width = signed_width(values + [-max(abs(v) for v in values)])
            leaves.append(tap_value(spike, Array(Const(v, signed(width)) for v in values)[group]))
            bounds.append(max(abs(v) for v in values))
            continue
        table = [leaf_value(index, chunk, groups) for index in range(1 << (2 * len(chunk) + group_bits))]
        width = signed_width(table)
        packed = sum((v & ((1 << width) - 1)) << (i * width) for i, v in enumerate(table))
        index = Cat(*(spike.as_value() for spike, _ in chunk), *([group[:group_bits]] if group_bits else []))
        leaves.append(Const(packed, len(table) * width).word_select(index, width).as_signed())
        bounds.append(max(abs(v) for v in table))
    return leaves, bounds


def table_leaves(groups: int) -> bool:
    """Whether a leaf is a table of its taps' spikes and the group (one LUT6 per bit)."""
    return 2 + (groups - 1).bit_length() <= LEAF_INPUTS


def leaf_chunks(tap_values, groups: int) -> list[list[int]]:
    """The taps (indices into `tap_values`, each [weight of each group]) of every leaf of a
    lane: taps whose weight is 0 in every group are left out; the others are sorted by their
    largest weight (a stable sort) and cut into leaves of `taps_per_leaf(groups)`, so that a
    leaf holds taps of a similar size (its width is that of the sum)."""
    live = sorted((i for i, values in enumerate(tap_values) if any(values)),
                  key=lambda i: -max(abs(v) for v in tap_values[i]))
    per_leaf = taps_per_leaf(groups) if table_leaves(groups) else 1
    return [live[first:first + per_leaf] for first in range(0, len(live), per_leaf)]


def lane_datapath(tap_values, groups: int, levels_per_stage: int = TREE_LEVELS_PER_STAGE) -> dict:
    """What one spike lane's taps and tree are made of, from its constant weights (a cost
    model reads it, gen/engines/spiking_dense.py): `leaves`, `leaf_bits` (the width of every
    leaf added up: a LUT6 per bit, or a weight choice and a ±w/0 select per bit past 16
    groups), `adder_bits` (the widths of the tree's adders) and `register_bits` (of the
    leaves' and the tree's registers), as `spike_leaves` and `adder_tree` build them."""
    bounds = []
    for chunk in leaf_chunks(tap_values, groups):
        bounds.append(max(sum(abs(tap_values[i][g]) for i in chunk) for g in range(groups)))
    leaf_bits = sum(signed_width([-b, b]) for b in bounds)
    adder_bits, tree_register_bits = tree_bits(bounds or [0], levels_per_stage)
    return {"leaves": len(bounds), "leaf_bits": leaf_bits, "adder_bits": adder_bits,
            "register_bits": tree_register_bits + (leaf_bits if registered_leaves(groups) else 0)}


def tree_bits(bounds, levels_per_stage: int = TREE_LEVELS_PER_STAGE) -> tuple[int, int]:
    """(adder bits, register bits) of `adder_tree` over leaves of these bounds, replayed."""
    nodes, level, adders, registers = list(bounds), 0, 0, 0
    while True:
        last = len(nodes) == 1
        if last or (level and level % levels_per_stage == 0):
            registers += sum(signed_width([-b, b]) for b in nodes)
            if last:
                return adders, registers
        paired = [nodes[i] + nodes[i + 1] for i in range(0, len(nodes) - 1, 2)]
        adders += sum(signed_width([-b, b]) for b in paired)
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes, level = paired, level + 1


def registered_leaves(groups: int, input_kind: str = "spikes") -> bool:
    """Whether a lane's leaves are registered before its adder tree. A pixel × w product always
    is (a DSP's routing and multiply fill a cycle). A spike table that adds several taps (up to
    4 groups) is too: few groups means many lanes, and a window bit's fanout to a leaf in every
    lane, then two adders, was ECP5 conv2's critical path (12 lanes: 94.4 MHz; 110.1 MHz with
    the register). A one-tap leaf (more groups, so fewer lanes) is not: synthesis folds it into
    the first adder, and registering it cost the fast model's conv3 (3 lanes, 16 groups) 18 %
    more LUTs (13,479 → 15,943, benchmarks/dense_engine.md)."""
    return input_kind == "pixels" or (table_leaves(groups) and taps_per_leaf(groups) > 1)


def leaf_stages(groups: int, input_kind: str = "spikes") -> int:
    """Registers between a lane's leaves and its tree: 1 or 0 (`registered_leaves`)."""
    return int(registered_leaves(groups, input_kind))


def taps_per_leaf(groups: int) -> int:
    """Taps one LUT6 leaf adds: 2 spike bits each beside the group index's bits."""
    return max(1, (LEAF_INPUTS - (groups - 1).bit_length()) // 2)


def leaf_value(index: int, taps, groups: int) -> int:
    """Σ spike·w[group] over `taps` for one table index: 2 bits (fire, neg) per tap from the
    least significant end, then the group (a group past the last one never occurs: 0)."""
    group = index >> (2 * len(taps))
    if group >= groups:
        return 0
    total = 0
    for i, (_, values) in enumerate(taps):
        fire, neg = index >> (2 * i) & 1, index >> (2 * i + 1) & 1
        total += (-values[group] if neg else values[group]) if fire else 0
    return total


def within(value, low: int, high: int):
    """low <= value < high for an unsigned `value`, without the comparisons that are constant
    for its width (a padding of 0 makes `value >= 0`, which Verilator's lint rejects)."""
    terms = []
    if low > 0:
        terms.append(value >= low)
    if high < 1 << len(value):
        terms.append(value < high)
    return Cat(*terms).all() if terms else Const(1, 1)


def registered(m, value, bound: int, name: str) -> Signal:
    """`value` (|value| <= bound) through one register."""
    r = Signal(signed(signed_width([-bound, bound])), name=name)
    m.d.sync += r.eq(value)
    return r


def delay(m, value, stages: int, name="d"):
    """`value` through `stages` registers (a tree shorter than the geometry's keeps the
    pipeline's depth, which the schedule counts)."""
    for i in range(stages):
        r = Signal.like(value, name=f"{name}{i}")
        m.d.sync += r.eq(value)
        value = r
    return value


def adder_tree(m, leaves, bounds, levels_per_stage=TREE_LEVELS_PER_STAGE, name="t"):
    """Sum `leaves` (signed values, |leaf i| <= bounds[i]) pairwise; a register after every
    `levels_per_stage` levels and after the last. Returns
    (sum signal, its bound, register stages). No leaves: a registered 0."""
    if not leaves:
        leaves, bounds = [Const(0, signed(1))], [0]
    nodes, level, stages = list(zip(leaves, bounds)), 0, 0
    while True:
        last = len(nodes) == 1
        if last or (level and level % levels_per_stage == 0):
            registered = []
            for i, (v, b) in enumerate(nodes):
                r = Signal(signed(signed_width([-b, b])), name=f"{name}_s{stages}_{i}")
                m.d.sync += r.eq(v)
                registered.append((r, b))
            nodes, stages = registered, stages + 1
            if last:
                return nodes[0][0], nodes[0][1], stages
        paired = []
        for i in range(0, len(nodes) - 1, 2):
            (a, ba), (b, bb) = nodes[i], nodes[i + 1]
            paired.append((a + b, ba + bb))
        if len(nodes) % 2:
            paired.append(nodes[-1])
        nodes, level = paired, level + 1


def lane_current(total, current_width: int):
    """A lane's Σ W·input, from its adder tree's width to the bounds' `current_width`.

    Why every sum fits, for every input alphabet the stream carries: a leaf's bound is the
    largest |value| of its table over every code of its taps (00, 01, 11 and the unused 10:
    ±w or 0 per tap, so it covers ternary and binary spikes alike) or, for pixels, max|w|·255
    (x in 0…255 times a signed weight). A tree node is sized for the sum of its children's
    bounds (`adder_tree`), so every partial sum the tree forms is exact, whatever the order.
    The tree's total is then Σ W·input of one channel's window (padded taps are 0, as in the
    golden model), which lies in the layer's accumulator interval (gen.ir.bounds: every partial
    sum of the bias and the synaptic terms, over the source's own alphabet) and so in
    `current_width` bits: keeping its low bits is exact in two's complement, though the tree,
    sized for ±Σ|w|, may be wider (a binary source's sums are one-sided)."""
    if len(total) <= current_width:
        return total
    return total[:current_width].as_signed()


def tree_stages(leaves: int, levels_per_stage: int = TREE_LEVELS_PER_STAGE) -> int:
    """Register stages `adder_tree` puts on a tree of `leaves` leaves."""
    n, level, stages = leaves, 0, 0
    while True:
        if n == 1 or (level and level % levels_per_stage == 0):
            stages += 1
            if n == 1:
                return stages
        n, level = (n + 1) // 2, level + 1


class DenseConvLayer(wiring.Component):
    """Ports: `maps_in` (In, map stream of C channels), `maps` (Out, map stream of O channels).

    `current_width` and `membrane_width` are the compiler's bounds (gen.ir.bounds, SPEC §4:
    the accumulator and membrane bits of the layer over its source's real alphabet: ternary
    {−1, 0, 1}, binary {0, 1}, pixels 0…255); the engine does not derive them again. Its
    internal sums fit any input the stream can carry (see `lane_current`), so only the LIF
    unit's current port has the bounds' width.
    """

    def __init__(self, geometry, weights, bias, theta_pos, theta_neg, *, leak_shift: int, steps: int,
                 kind: str, lanes: int, weight_width: int, current_width: int, membrane_width: int,
                 buffer_rows: int | None = None, input_kind: str = "spikes"):
        g = self.geometry = check_conv_geometry(geometry)
        self.lanes = check_lanes(lanes, g.out_channels)
        self.groups = g.out_channels // lanes
        self.weight_width = check_int("weight_width", weight_width, 2)
        self.weights = check_weights(weights, g.weight_shape, weight_width)
        self.kind = check_kind(kind)
        self.bias, self.theta_pos, self.theta_neg = check_neurons(g.out_channels, bias, theta_pos, theta_neg, kind)
        self.leak_shift = check_int("leak_shift", leak_shift, 0)
        self.steps = check_int("steps", steps, 1)
        self.current_width = check_int("current_width", current_width, 2)
        self.membrane_width = check_int("membrane_width", membrane_width, 2)
        self.buffer_rows = check_buffer_rows(default_buffer_rows(g.kernel, g.stride) if buffer_rows is None
                                             else buffer_rows, g.kernel)
        self.neuron_words = g.out_positions * self.groups
        if self.neuron_words < MIN_NEURON_WORDS:
            raise ValueError(f"lanes must leave at least {MIN_NEURON_WORDS} neuron words per step "
                             f"(output positions × O/lanes), not {self.neuron_words} with lanes = {lanes}")
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, not {input_kind!r}")
        # Spikes: a tap is ±w or 0. Pixels (the encoding layer): a tap is pixel × w, a constant
        # multiply; the window is the same, the line buffer holds 8 bits per channel.
        self.input_kind = input_kind
        self.max_input = PIXEL_MAX if input_kind == "pixels" else 1
        self.in_layout = map_layout(g.in_channels) if input_kind == "spikes" else pixel_map_layout(g.in_channels)
        self.out_layout = map_layout(g.out_channels)
        super().__init__({"maps_in": In(stream.Signature(self.in_layout)),
                          "maps": Out(map_signature(g.out_channels))})

    # ---- the schedule as constants
    @property
    def columns(self) -> int:
        g = self.geometry
        return (g.out_width - 1) * g.stride + g.kernel

    def row_needs(self, oy: int) -> tuple[int, int]:
        """(first input row still needed, input rows that must be written) for output row oy."""
        g = self.geometry
        top = oy * g.stride - g.padding
        return max(0, top), min(g.in_height, top + g.kernel)

    def elaborate(self, platform):
        m = Module()
        g, P, F, S = self.geometry, self.lanes, self.groups, self.buffer_rows
        C, H, W, k, s, p = g.in_channels, g.in_height, g.in_width, g.kernel, g.stride, g.padding
        Ho, Wo, T = g.out_height, g.out_width, self.steps
        ncols = self.columns
        row_bits = max(H + k + S, 2 * S).bit_length() + 2        # wrapping row counters, compared by difference
        slot_bits = (S - 1).bit_length()

        # -- line buffer: word x holds column x of the S buffered rows, one slot per row ------
        col_layout = data.ArrayLayout(self.in_layout["spikes"].shape, S)
        m.submodules.lines = lines = Memory(shape=col_layout, depth=max(2, W), init=[])
        lw = lines.write_port(granularity=1)        # one row slot per write enable
        # A beat is written a cycle after it is accepted (below). The issue's first read of a
        # row that has just become complete is its column 0, not the column still being
        # written, unless the row is one column wide: then the read sees the write.
        lr = lines.read_port(transparent_for=(lw,) if W == 1 else ())

        # Writer: rows are counted globally (across steps and images), modulo 2^row_bits.
        written = Signal(row_bits)      # input rows completely written
        wx = Signal(range(max(2, W)))
        # The first row the issue still reads: step_base + first_row[oy], a register loaded with
        # the next row's value when the issue moves on (ECP5 conv2's critical path was oy → the
        # row table → this sum → free → the line buffer's write enables).
        lowest = Signal(row_bits, init=self.row_needs(0)[0])
        free = Signal()
        # Signed differences: the issue may have moved past rows not yet written (rows no output reads).
        m.d.comb += free.eq((written - lowest)[:row_bits].as_signed() < S)
        accept = self.maps_in.valid & free
        m.d.comb += self.maps_in.ready.eq(free)
        # The write is registered: the line buffer's write enables (one per row slot, each
        # spread over the LUT-RAM's columns) are driven by registers, not by the free-row
        # arithmetic (ECP5 conv2's critical path: lowest → free → accept → the enables, 10 ns of
        # routing). Rows never wait for it: a row is read from column 0 on, after it is complete.
        write_col = Signal.like(wx)
        write_spikes = Signal.like(self.maps_in.payload.spikes)
        write_slot = Signal(S)
        m.d.sync += [write_col.eq(wx), write_spikes.eq(self.maps_in.payload.spikes)]
        m.d.comb += lw.addr.eq(write_col)
        for slot in range(S):
            m.d.sync += write_slot[slot].eq(accept & (written[:slot_bits] == slot if slot_bits else 1))
            m.d.comb += [lw.data[slot].eq(write_spikes), lw.en[slot].eq(write_slot[slot])]
        with m.If(accept):
            with m.If(wx == W - 1):
                m.d.sync += [wx.eq(0), written.eq(written + 1)]
            with m.Else():
                m.d.sync += wx.eq(wx + 1)

        # -- issue: one column shift or one group dwell per cycle -------------------------------
        step_base = Signal(row_bits)    # global index of input row 0 of the issuing step
        t = Signal(range(max(2, T)))
        oy = Signal(range(max(2, Ho)))
        ci = Signal(range(max(2, ncols)))
        gi = Signal(range(max(2, F)))
        dwell = Signal()
        word = Signal(range(max(2, self.neuron_words)))   # neuron word = position·F + group
        # Per output row oy, the next row's (first row read, rows needed) from step_base: the
        # row after the last one is row 0 of the next step (H rows on).
        next_first = Array(Const(self.row_needs((y + 1) % Ho)[0] + (H if y == Ho - 1 else 0), row_bits)
                           for y in range(Ho))
        next_need = Array(Const(self.row_needs((y + 1) % Ho)[1] + (H if y == Ho - 1 else 0), row_bits)
                          for y in range(Ho))
        top_row = Array(Const((y * s - p) % (1 << row_bits), row_bits) for y in range(Ho))
        row_mask = Array(Const(sum(1 << i for i in range(k) if 0 <= y * s - p + i < H), k) for y in range(Ho))
        completes = Array(Const(int(c >= k - 1 and (c - k + 1) % s == 0), 1) for c in range(ncols))
        # The row oy may start once `written` reaches step_base + need_rows[oy]: that sum is a
        # register too, loaded a row ahead like `lowest`.
        ready_at = Signal(row_bits, init=self.row_needs(0)[1])
        row_ready = (written - ready_at)[:row_bits].as_signed() >= 0
        # Mid-row issues never wait: the rows of a started row stay until it ends.
        mid_row = dwell | (ci != 0)
        issue = Signal()
        room = Signal(init=1)           # the output FIFO has room for one more emitted window
        m.d.comb += issue.eq((mid_row | row_ready) & room)
        emit = Signal()
        m.d.comb += emit.eq(dwell | completes[ci])
        last_group = Mux(dwell, gi == F - 1, F == 1)
        row_end = (ci == ncols - 1) & last_group
        last_word = word == self.neuron_words - 1

        # Stage 1 (line buffer read data), stage 2 (window).
        v1_shift, v1_col, v1_emit = Signal(), Signal(), Signal()
        slot1 = Signal(slot_bits or 1)
        mask1 = Signal(k)
        tag_layout = data.StructLayout({"word": unsigned(max(1, (self.neuron_words - 1).bit_length())),
                                        "group": unsigned(max(1, (F - 1).bit_length())),
                                        "eos": 1, "eoi": 1})
        ctl_layout = data.StructLayout({"t": unsigned(max(1, (T - 1).bit_length())), "tag": tag_layout})
        ctl1 = Signal(ctl_layout)
        # The line buffer's read address is ci − p, kept in its own register (updated with ci, a
        # cycle ahead): the wide LUT-RAM's address pins load it, not the column counter ci whose
        # compares decide the issue (ECP5 conv2's critical path was ci → address → issue → ci).
        addr_bits = max(1, (W - 1).bit_length())
        read_col = Signal(addr_bits, init=(-p) % (1 << addr_bits))
        m.d.comb += lr.addr.eq(read_col)
        m.d.sync += [
            v1_shift.eq(issue & ~dwell),
            v1_col.eq(within(ci, p, p + W)),
            v1_emit.eq(issue & emit),
            slot1.eq((step_base + top_row[oy])[:slot_bits] if slot_bits else 0),
            mask1.eq(row_mask[oy]),
            ctl1.t.eq(t),
            ctl1.tag.word.eq(word), ctl1.tag.group.eq(Mux(dwell, gi, 0)),
            ctl1.tag.eos.eq(last_word), ctl1.tag.eoi.eq(last_word & (t == T - 1)),
        ]
        with m.If(issue):
            with m.If(emit):
                m.d.sync += word.eq(Mux(last_word, 0, word + 1))
            with m.If(emit & ~last_group):
                m.d.sync += [dwell.eq(1), gi.eq(Mux(dwell, gi + 1, 1))]
            with m.Else():
                m.d.sync += [dwell.eq(0), gi.eq(0)]
                with m.If(row_end):
                    m.d.sync += [ci.eq(0), read_col.eq(-p),
                                 lowest.eq(step_base + next_first[oy]), ready_at.eq(step_base + next_need[oy])]
                    with m.If(oy == Ho - 1):
                        m.d.sync += [oy.eq(0), step_base.eq(step_base + H), t.eq(Mux(t == T - 1, 0, t + 1))]
                    with m.Else():
                        m.d.sync += oy.eq(oy + 1)
                with m.Else():
                    m.d.sync += [ci.eq(ci + 1), read_col.eq(ci + 1 - p)]

        # Window: k columns of k rows of C spikes; column 0 is the leftmost (kernel x = 0).
        spike_shape = self.in_layout["spikes"].shape.elem_shape
        window = [[Signal(data.ArrayLayout(spike_shape, C), name=f"win_x{x}_y{y}") for y in range(k)]
                  for x in range(k)]
        v2_emit = Signal()
        ctl2 = Signal(ctl_layout)
        m.d.sync += [v2_emit.eq(v1_emit), ctl2.eq(ctl1)]
        with m.If(v1_shift):
            for x in range(k - 1):
                for y in range(k):
                    m.d.sync += window[x][y].eq(window[x + 1][y])
            for y in range(k):
                slot = Signal(slot_bits or 1, name=f"slot{y}")
                m.d.comb += slot.eq(slot1 + y)
                row = Array(lr.data[i].as_value() for i in range(S))[slot[:slot_bits] if slot_bits else 0]
                m.d.sync += window[k - 1][y].eq(Mux(v1_col & mask1[y], row, 0))

        # Taps and adder trees, one per lane; the weight of a tap is a constant per group.
        # Every leaf table of every lane reads the group index: ECP5 conv2's critical path was
        # that one register's fanout (ctl2's group → the leaves, 8.2 ns of routing). So the
        # lanes read F copies of it, each loaded with the group when the window emits and with
        # its own constant otherwise (the leaves' sums are discarded then), which keeps
        # synthesis from merging the copies back into one.
        group_copies = []
        for c in range(F if self.input_kind == "spikes" else 0):
            copy = Signal.like(ctl2.tag.group, name=f"group_copy{c}")
            m.d.sync += copy.eq(Mux(v1_emit, ctl1.tag.group, c))
            group_copies.append(copy)
        # Fixed by the geometry (schedule_cycles): the leaves' register, then the tree's.
        leaf_stage = leaf_stages(F, self.input_kind)
        stages = leaf_stage + tree_stages(g.fan_in, TREE_LEVELS_PER_STAGE)
        sums = []
        for j in range(P):
            taps = [(window[kx][ky][c], [int(self.weights[gg * P + j, c, ky, kx]) for gg in range(F)])
                    for c in range(C) for ky in range(k) for kx in range(k)]
            if self.input_kind == "spikes":
                leaves, bounds = spike_leaves(taps, group_copies[j % F], F)
                if leaf_stage:
                    leaves = [registered(m, leaf, bound, f"lane{j}_leaf{i}")
                              for i, (leaf, bound) in enumerate(zip(leaves, bounds))]
            else:
                leaves, bounds = [], []
                for i, (value, values) in enumerate(taps):
                    if any(values):
                        width = signed_width(values + [-max(abs(v) for v in values)])
                        weight = Const(values[0], signed(width))
                        if F > 1:
                            # The group's weight is registered beside ctl2 (from ctl1's group, so
                            # equal to Array[ctl2's group]): the multiplier's input is a register.
                            weight = Signal(signed(width), name=f"lane{j}_w{i}")
                            m.d.sync += weight.eq(Array(Const(v, signed(width)) for v in values)[ctl1.tag.group])
                        bound = max(abs(v) for v in values) * self.max_input
                        # The product is registered before the tree (a DSP's routing and
                        # multiply fill a cycle).
                        leaves.append(registered(m, value * weight, bound, f"lane{j}_p{i}"))
                        bounds.append(bound)
            total, _, used = adder_tree(m, leaves, bounds, name=f"lane{j}")
            sums.append(lane_current(delay(m, total, stages - leaf_stage - used, name=f"lane{j}_pad"),
                                     self.current_width))
        # The control rides beside the tree's registers.
        ctl_pipe, valid_pipe = [ctl2], [v2_emit]
        for i in range(stages):
            c_next, v_next = Signal(ctl_layout, name=f"ctl_t{i}"), Signal(name=f"valid_t{i}")
            m.d.sync += [c_next.eq(ctl_pipe[-1]), v_next.eq(valid_pipe[-1])]
            ctl_pipe.append(c_next)
            valid_pipe.append(v_next)

        # -- LIF update (hw/lif.py), membranes read one stage ahead -----------------------------
        bias_width = signed_width(self.bias)
        theta_width = signed_width(self.theta_pos + self.theta_neg)
        m.submodules.lif = lif = LIFUnit(lanes=P, steps=T, leak_shift=self.leak_shift, kind=self.kind,
                                         current_width=self.current_width, bias_width=bias_width,
                                         membrane_width=self.membrane_width, theta_width=theta_width,
                                         tag_width=tag_layout.size)
        m.submodules.membranes = mem = Memory(shape=data.ArrayLayout(signed(self.membrane_width), P),
                                              depth=max(2, self.neuron_words), init=[])
        mr, mw = mem.read_port(), mem.write_port()
        # The pipeline never stalls: the credits below keep the output FIFO from filling.
        m.d.comb += mr.addr.eq(ctl_pipe[-2].tag.word)
        last = ctl_pipe[-1]
        group_last = last.tag.group

        def table(values, j, width):
            return Array(Const(values[gg * P + j], signed(width)) for gg in range(F))[group_last]

        neurons = lif.neurons.payload
        m.d.comb += [lif.neurons.valid.eq(valid_pipe[-1]), neurons.t.eq(last.t), neurons.tag.eq(last.tag)]
        for j in range(P):
            lane = neurons.lanes[j]
            m.d.comb += [lane.current.eq(sums[j]), lane.membrane.eq(mr.data[j]),
                         lane.bias.eq(table(self.bias, j, bias_width)),
                         lane.theta_pos.eq(table(self.theta_pos, j, theta_width)),
                         lane.theta_neg.eq(table(self.theta_neg, j, theta_width))]

        # -- write back, assemble the O channels of a position, queue the beat ------------------
        depth = output_fifo_depth(g, P, self.input_kind)
        m.submodules.out = out = StreamFIFO(self.out_layout, depth)
        wiring.connect(m, out.r, wiring.flipped(self.maps))
        upd = lif.updates.payload
        utag = data.View(tag_layout, upd.tag)
        done = lif.updates.valid
        m.d.comb += [lif.updates.ready.eq(1), mw.addr.eq(utag.word), mw.en.eq(done)]
        # Credits: windows emitted and not yet out of the engine (their beat read from the FIFO,
        # or their group's spikes held). At most `depth`, so a beat always finds the FIFO ready
        # (it holds `depth` beside its output register).
        credits = Signal(range(depth + 1))
        taken = issue & emit
        held_back = done & (utag.group != F - 1)
        popped = out.r.valid & out.r.ready          # may return a credit in the same cycle as held_back
        # The returns are counted a cycle late, from a register: the FIFO's output and the LIF
        # unit's last stage sit far from the issue control (ECP5 conv3's critical path was
        # out.r.valid → popped → credits − returned → room, 7.2 ns of routing). Late returns
        # only hold credits longer: the FIFO holds one beat more for them.
        returned = Signal(2)
        m.d.sync += returned.eq(held_back + popped)
        m.d.sync += credits.eq(credits + taken - returned)
        # `room` assumes this cycle's issue takes a credit, so it does not wait for the issue
        # (ECP5 conv2's critical path was room → issue → taken → room, 8.6 ns of routing: room
        # enables the whole issue control). The FIFO holds one beat more than the round trip
        # for it.
        m.d.sync += room.eq(credits + 1 - returned < depth)
        m.d.comb += [mw.data[j].eq(upd.lanes[j].membrane) for j in range(P)]
        held = Signal(self.out_layout["spikes"].shape)
        with m.If(done):
            with m.Switch(utag.group):
                for gg in range(F - 1):
                    with m.Case(gg):
                        for j in range(P):
                            m.d.sync += [held[gg * P + j].fire.eq(upd.lanes[j].fire),
                                         held[gg * P + j].neg.eq(upd.lanes[j].neg)]
        beat = out.w.payload
        m.d.comb += [out.w.valid.eq(lif.updates.valid & (utag.group == F - 1)),
                     beat.eos.eq(utag.eos), beat.eoi.eq(utag.eoi)]
        for o in range(g.out_channels):
            gg, j = divmod(o, P)
            if gg == F - 1:
                m.d.comb += [beat.spikes[o].fire.eq(upd.lanes[j].fire), beat.spikes[o].neg.eq(upd.lanes[j].neg)]
            else:
                m.d.comb += beat.spikes[o].eq(held[o])
        return m


def schedule_cycles(geometry: ConvGeometry, lanes: int, buffer_rows: int | None = None, steps: int = 1,
                    images: int = 1, input_kind: str = "spikes") -> int:
    """Cycles from the first input beat to the last output beat leaving the engine, for
    `images` images of `steps` steps fed back to back at one beat per cycle and drained
    without back-pressure: the RTL's issue and writer counters replayed cycle by cycle."""
    g = geometry
    S = buffer_rows or default_buffer_rows(g.kernel, g.stride)
    F = g.out_channels // lanes
    H, W, k, s, p = g.in_height, g.in_width, g.kernel, g.stride, g.padding
    ncols = (g.out_width - 1) * s + k
    rows = [(max(0, y * s - p), min(H, y * s - p + k)) for y in range(g.out_height)]
    total_rows = H * steps * images
    total_issue_rows = g.out_height * steps * images
    written, wx, beats = 0, 0, 0
    step_base, oy, ci, gi, dwell, issued_rows = 0, 0, 0, 0, False, 0
    cycle = 0
    while issued_rows < total_issue_rows:
        lowest = step_base + rows[oy][0]
        free = written - lowest < S and written < total_rows
        row_ready = written - step_base >= rows[oy][1]
        # issue (uses the registers of this cycle), then the writer's update
        if dwell or ci != 0 or row_ready:
            emit = dwell or (ci >= k - 1 and (ci - k + 1) % s == 0)
            last_group = (gi == F - 1) if dwell else F == 1
            if emit and not last_group:
                gi, dwell = (gi + 1 if dwell else 1), True
            else:
                gi, dwell = 0, False
                if ci == ncols - 1:
                    ci, issued_rows = 0, issued_rows + 1
                    if oy == g.out_height - 1:
                        oy, step_base = 0, step_base + H
                    else:
                        oy += 1
                else:
                    ci += 1
        if free:
            beats += 1
            if wx == W - 1:
                wx, written = 0, written + 1
            else:
                wx += 1
        cycle += 1
    # The last issue's word passes the read, window, leaf, tree and LIF registers, then the output
    # FIFO (a push and its read register: 2 cycles).
    return cycle + pipeline_latency(g, lanes, input_kind)


def pipeline_latency(geometry: ConvGeometry, lanes: int, input_kind: str = "spikes") -> int:
    """Cycles from an issue to its beat leaving the output FIFO: line-buffer read, window,
    the leaves' register (`leaf_stages`), the adder tree's registers, the LIF unit's two
    stages, the FIFO's two."""
    groups = geometry.out_channels // lanes
    return (2 + leaf_stages(groups, input_kind) + tree_stages(geometry.fan_in, TREE_LEVELS_PER_STAGE)
            + LIF_STAGES + 2)


def output_fifo_depth(geometry: ConvGeometry, lanes: int, input_kind: str = "spikes") -> int:
    """Beats the output FIFO holds: every window emitted within one round trip (issue to the
    beat's read, the return's register, then the credit's) without back-pressure, so the
    credits never hold up the issue and `schedule_cycles` stays the engine's cycle count; one
    more for `room`, which counts the issue of the cycle it is computed in as taken."""
    return pipeline_latency(geometry, lanes, input_kind) + 5

