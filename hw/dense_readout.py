"""DenseReadout: the readout as a matrix-vector unit over a dense map stream (docs/hardware.md,
"Dense streaming engines"). Multiplier-free and exact (SPEC §4: logits = Σ_t I^t).

    maps_in ──► beat register ──► weight ROM word (position, group) ──► PO lanes × C taps (±w / 0)
            ──► pipelined adder trees ──► O logit registers (+= per beat, over all T steps)
    after the image's last beat: + T·b, argmax (smallest index of the max) ──► result

A beat holds the C channels of one position of the [C,H,W] source map; the readout's
weights [O, C·H·W] (PyTorch's flattening: feature c·H·W + position) are read from a ROM
whose word (position, group g) holds the C weights of the PO outputs g·PO … g·PO+PO−1.
Each beat takes F = O/PO cycles; an image takes T·H·W·F cycles of accumulation, the
tree's drain, and O + 3 cycles for the argmax and the result.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.dense_conv import tree_stages, adder_tree, check_weights, tap_value
from hw.geometry import DenseGeometry, check_lanes
from hw.lif import check_int
from hw.readout import argmax_states, result_layout
from hw.sweep import check_channel_ints, signed_width
from hw.ternary_stream import map_signature


class DenseReadout(wiring.Component):
    """Ports: `maps_in` (In, map stream of `channels` channels), `result` (Out, hw.readout's Result)."""

    def __init__(self, geometry, weights, bias, *, channels: int, lanes: int, weight_width: int, steps: int,
                 current_width: int, logit_width: int):
        if not isinstance(geometry, DenseGeometry):
            raise TypeError(f"geometry must be a DenseGeometry, not {geometry!r}")
        self.geometry = geometry
        self.channels = check_int("channels", channels, 1)
        if geometry.in_features % channels:
            raise ValueError(f"channels must divide the {geometry.in_features} input features, not {channels!r}")
        self.positions = geometry.in_features // channels
        self.lanes = check_lanes(lanes, geometry.out_features)
        self.groups = geometry.out_features // lanes
        self.weight_width = check_int("weight_width", weight_width, 2)
        self.weights = check_weights(weights, geometry.weight_shape, weight_width)
        self.bias = check_channel_ints("bias", bias, geometry.out_features)
        self.steps = check_int("steps", steps, 1)
        self.logit_width = check_int("logit_width", logit_width, 2)
        self.sum_width = max(logit_width, check_int("current_width", current_width, 2) + steps.bit_length()) + 1
        self.classes = geometry.out_features
        self.result_layout = result_layout(logit_width, self.classes)
        super().__init__({"maps_in": In(map_signature(channels)),
                          "result": Out(stream.Signature(self.result_layout))})

    def rom_words(self) -> list:
        """Word (position·F + g): lane j's C weights of output g·PO + j."""
        C, HW, P = self.channels, self.positions, self.lanes
        w = self.weights.reshape(self.classes, C, HW)
        return [[[int(w[g * P + j, c, pos]) for c in range(C)] for j in range(P)]
                for pos in range(HW) for g in range(self.groups)]

    def elaborate(self, platform):
        m = Module()
        C, HW, P, F, T, K = self.channels, self.positions, self.lanes, self.groups, self.steps, self.classes
        words = HW * F
        word_layout = data.ArrayLayout(data.ArrayLayout(signed(self.weight_width), C), P)
        m.submodules.rom = rom = Memory(shape=word_layout, depth=max(2, words), init=self.rom_words())
        rp = rom.read_port()

        # -- issue: the held beat, one group per cycle -----------------------------------------
        held, last_beat_of_image = Signal(), Signal()
        spikes = Signal(self.maps_in.payload.spikes.shape())
        g = Signal(range(max(2, F)))
        word = Signal(range(max(2, words)))
        beats = Signal(range(max(2, T * HW)))          # beats of the image taken so far
        blocked = Signal()        # from the image's last beat until its result is taken
        last_group = g == F - 1
        m.d.comb += self.maps_in.ready.eq(~blocked & (~held | last_group))
        take = self.maps_in.valid & self.maps_in.ready
        m.d.comb += [rp.addr.eq(word), rp.en.eq(1)]
        with m.If(held):
            m.d.sync += [g.eq(Mux(last_group, 0, g + 1)), word.eq(Mux(word == words - 1, 0, word + 1))]
            with m.If(last_group & ~take):
                m.d.sync += held.eq(0)
        with m.If(take):
            m.d.sync += [held.eq(1), spikes.eq(self.maps_in.payload.spikes),
                         last_beat_of_image.eq(beats == T * HW - 1), blocked.eq(beats == T * HW - 1),
                         beats.eq(Mux(beats == T * HW - 1, 0, beats + 1))]

        # -- stage 1: the ROM read beside the beat; stage 2: its word registered (no logic on a
        # block RAM's output in the cycle it arrives), taps and trees ----------------------------
        v1, g1, spikes1, end1 = Signal(), Signal.like(g), Signal.like(spikes), Signal()
        m.d.sync += [v1.eq(held), g1.eq(g), spikes1.eq(spikes), end1.eq(held & last_group & last_beat_of_image)]
        v2, g2, spikes2, end2 = Signal(), Signal.like(g), Signal.like(spikes), Signal()
        rom2 = Signal.like(rp.data)
        m.d.sync += [v2.eq(v1), g2.eq(g1), spikes2.eq(spikes1), end2.eq(end1), rom2.eq(rp.data)]
        bound = (1 << (self.weight_width - 1))
        sums, stages = [], 0
        for j in range(P):
            leaves = [tap_value(spikes2[c], rom2[j][c]) for c in range(C)]
            total, _, stages = adder_tree(m, leaves, [bound] * C, name=f"lane{j}")
            sums.append(total)
        valid, group, end = [v2], [g2], [end2]
        for i in range(stages):
            vn, gn, en = Signal(name=f"v_t{i}"), Signal.like(g, name=f"g_t{i}"), Signal(name=f"end_t{i}")
            m.d.sync += [vn.eq(valid[-1]), gn.eq(group[-1]), en.eq(end[-1])]
            valid.append(vn)
            group.append(gn)
            end.append(en)

        # -- the logits: += per beat; at the image's end + T·b, argmax, result ------------------
        sums_all = [Signal(signed(self.sum_width), name=f"logit_sum{o}") for o in range(K)]
        with m.If(valid[-1]):
            with m.Switch(group[-1]):
                for gg in range(F):
                    with m.Case(gg):
                        for j in range(P):
                            o = gg * P + j
                            m.d.sync += sums_all[o].eq(sums_all[o] + sums[j])
        logits = [Signal(signed(self.logit_width), name=f"logit{o}") for o in range(K)]
        best = Signal.like(self.result.payload.cls)
        best_value = Signal(signed(self.logit_width))
        index = Signal(range(K + 1))
        m.d.comb += [self.result.payload.logits[o].eq(logits[o]) for o in range(K)]
        m.d.comb += self.result.payload.cls.eq(best)
        with m.FSM():
            with m.State("ACCUMULATE"):
                with m.If(valid[-1] & end[-1]):
                    m.next = "FINISH"
            with m.State("FINISH"):       # the image's last sums landed: logits = Σ + T·b, clear
                m.d.sync += [logits[o].eq(sums_all[o] + T * self.bias[o]) for o in range(K)]
                m.d.sync += [sums_all[o].eq(0) for o in range(K)]
                m.next = "FIRST"
            argmax_states(m, logits, index, best, best_value, then="EMIT")
            with m.State("EMIT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.d.sync += blocked.eq(0)
                    m.next = "ACCUMULATE"
        return m


def readout_cycles(channels: int, positions: int, classes: int, lanes: int, steps: int) -> int:
    """Cycles per image back to back (input at full rate, result taken at once): T·H·W beats of
    F cycles, the drain (the beat register, the ROM read, its register, the tree stages), then FINISH, FIRST,
    K − 1 argmax cycles, EMIT."""
    F = classes // lanes
    drain = 3 + tree_stages(channels, 2)
    return steps * positions * F + drain + 1 + 1 + max(0, classes - 1) + 1


