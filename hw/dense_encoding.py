"""The dense encoding layer: 8 pixels per input beat, one full k×k window of pixels per
cycle through constant multipliers, the LIF unit, a dense spike map out
(docs/hardware.md, "Dense streaming engines").

    pixels (8 per beat, [C,H,W] order) ──► PixelReplay (the image, replayed T times as
        one position with its C pixels per beat) ──► DenseConvLayer(input_kind="pixels") ──► maps

Direct encoding (SPEC §4: the first layer's source is the image at every step) needs the
image T times: PixelReplay keeps one image (C planes of ceil(H·W/8) words of 8 pixels) and
streams step 0 behind the writer, so at T = 1 nothing waits for a whole image; the next
image's words overwrite the buffer only behind the last step's read.

The host packs an image's C·H·W pixels 8 to a beat, the channel planes back to back, and
zero-pads the image's last beat (docs/build.md, "Input packing"). With one channel, or H·W a
multiple of 8, every beat belongs to one plane and a plane's last word is the only partial
one: the replay stores it whole and never reads its padding. Otherwise a beat may straddle
the end of channel c and the start of c + 1, and `PlaneAligner` first cuts the stream into
plane words (plane c's word j: its pixels 8j … 8j + 7), which the replay stores as before.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.dense_conv import DenseConvLayer, pixel_map_layout, schedule_cycles
from hw.geometry import ConvGeometry
from hw.lif import check_int
from hw.skid import SkidBuffer

PIXELS_PER_BEAT = 8


def wide_pixel_layout(pixels_per_beat: int = PIXELS_PER_BEAT) -> data.StructLayout:
    """The pixel input: `pixels_per_beat` uint8 pixels in [C,H,W] order (pixel i of the beat
    in bits [8i, 8i+8): a 64-bit AXI-Stream word, little end first), `last` on the image's
    final beat."""
    return data.StructLayout({"pixels": data.ArrayLayout(unsigned(8), pixels_per_beat), "last": 1})


def beats_tile_planes(channels: int, positions: int, pixels_per_beat: int = PIXELS_PER_BEAT) -> bool:
    """Whether every input beat holds pixels of one channel plane only: one channel (its last
    beat zero-padded by the host), or H·W a multiple of the beat's pixels."""
    return channels == 1 or positions % pixels_per_beat == 0


class PlaneAligner(wiring.Component):
    """`pixels` (an image's C·H·W pixels back to back, 8 per beat, the last beat zero-padded,
    `last` on it) to `words` (the same pixels as C planes of N = ceil(H·W/8) words: word j of
    plane c holds the plane's pixels 8j … 8j + 7, its last word the r = H·W − 8(N − 1) left;
    `last` on the image's final word).

    A buffer of 16 pixels holds what has arrived and not left: a word leaves when the buffer
    holds the word's pixels (8, or r for a plane's last word), and a beat is appended behind
    them when at most 8 are held, so the buffer never overflows and `pixels.ready` depends on
    registers only. Each beat adds 8 pixels and each word takes 8 but a plane's last one, so
    the buffer only fills up (and skips a beat's cycle) once per 8/(8 − r) planes. The
    padding of the image's last beat is dropped after the image's final word; no beat is
    taken between the image's last beat and that word, so no pixel of the next image is."""

    def __init__(self, channels: int, positions: int, pixels_per_beat: int = PIXELS_PER_BEAT):
        self.channels = check_int("channels", channels, 1)
        self.positions = check_int("positions", positions, 1)
        self.per_beat = check_int("pixels_per_beat", pixels_per_beat, 1)
        self.plane_words = -(-positions // pixels_per_beat)
        layout = wide_pixel_layout(pixels_per_beat)
        super().__init__({"pixels": In(stream.Signature(layout)), "words": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        C, N, B = self.channels, self.plane_words, self.per_beat
        tail_pixels = self.positions - B * (N - 1)          # r: the pixels of a plane's last word
        buf = Signal(16 * B)                                   # 2·B pixels, the oldest in the low byte
        have = Signal(range(2 * B + 1))
        c = Signal(range(max(2, C)))
        j = Signal(range(max(2, N)))
        closing = Signal()      # the image's last beat is in: take nothing until its final word left
        tail = (j == N - 1) if N > 1 else Const(1, 1)
        need = Mux(tail, tail_pixels, B)
        final = tail & (c == C - 1) if C > 1 else tail
        m.d.comb += [self.words.valid.eq(have >= need), self.words.payload.pixels.eq(buf[:8 * B]),
                     self.words.payload.last.eq(final)]
        emit = self.words.valid & self.words.ready
        m.d.comb += self.pixels.ready.eq(~closing & (have <= B))
        accept = self.pixels.valid & self.pixels.ready
        shifted = Mux(emit, Mux(tail, buf >> (8 * tail_pixels), buf >> (8 * B)), buf)
        level = Signal(range(2 * B + 1))
        m.d.comb += level.eq(have - Mux(emit, need, 0))
        incoming = Signal(16 * B)
        m.d.comb += incoming.eq(self.pixels.payload.pixels.as_value() << (level * 8))
        with m.If(emit & final):
            m.d.sync += [buf.eq(0), have.eq(0), closing.eq(0)]
        with m.Else():
            m.d.sync += [buf.eq(Mux(accept, shifted | incoming, shifted)), have.eq(level + Mux(accept, B, 0))]
            with m.If(accept & self.pixels.payload.last):
                m.d.sync += closing.eq(1)
        with m.If(emit):
            m.d.sync += j.eq(Mux(tail, 0, j + 1))
            with m.If(tail):
                m.d.sync += c.eq(Mux(c == C - 1, 0, c + 1))
        return m


class PixelReplay(wiring.Component):
    """`pixels` (wide pixel beats) to `maps` (one position, its C pixels per beat; (t, y, x)
    order, T times per image, eos/eoi marked). Beats must tile the channel planes
    (`beats_tile_planes`, or `aligned`: plane words from PlaneAligner); a plane's last word
    may be partial."""

    def __init__(self, channels: int, height: int, width: int, *, steps: int, pixels_per_beat: int = PIXELS_PER_BEAT,
                 aligned: bool = False):
        self.channels = check_int("channels", channels, 1)
        self.height, self.width = check_int("height", height, 1), check_int("width", width, 1)
        self.steps = check_int("steps", steps, 1)
        self.per_beat = check_int("pixels_per_beat", pixels_per_beat, 1)
        self.positions = height * width
        # `aligned`: the beats are plane words already (PlaneAligner's), whatever H·W is.
        if not aligned and not beats_tile_planes(channels, self.positions, pixels_per_beat):
            raise ValueError(f"pixels_per_beat must divide the {self.positions} positions of a channel when "
                             f"there are {channels} channels (a beat may not straddle two; PlaneAligner cuts "
                             f"them into plane words), not {pixels_per_beat!r}")
        self.words = -(-self.positions // pixels_per_beat)      # per channel plane, the last one padded
        self.out_layout = pixel_map_layout(channels)
        super().__init__({"pixels": In(stream.Signature(wide_pixel_layout(pixels_per_beat))),
                          "maps": Out(stream.Signature(self.out_layout))})

    def elaborate(self, platform):
        m = Module()
        C, HW, T, B, N = self.channels, self.positions, self.steps, self.per_beat, self.words
        word_shape = data.ArrayLayout(unsigned(8), B)
        planes = []
        for c in range(C):
            mem = Memory(shape=word_shape, depth=max(2, N), init=[])
            m.submodules[f"plane{c}"] = mem
            planes.append((mem.write_port(), mem.read_port()))

        # Writer: plane wc, word wq of the image after the reader's when `ahead`.
        wc = Signal(range(max(2, C)))
        wq = Signal(range(max(2, N)))
        ahead = Signal()
        # Reader: step rt, position rp.
        rt = Signal(range(max(2, T)))
        rp = Signal(range(max(2, HW)))
        reader_done_with_word = (rt == T - 1) & (rp >= (wq + 1) * B)
        may_write = ~ahead | reader_done_with_word
        m.d.comb += self.pixels.ready.eq(may_write)
        write = self.pixels.valid & may_write
        for c, (wp, _) in enumerate(planes):
            m.d.comb += [wp.addr.eq(wq), wp.data.eq(self.pixels.payload.pixels), wp.en.eq(write & (wc == c))]
        written = Signal(range(C * N + 1))          # words of the reader's image written (when not ahead)
        image_end = (wc == C - 1) & (wq == N - 1)
        reader_image_end = Signal()
        with m.If(write):
            m.d.sync += [wq.eq(Mux(wq == N - 1, 0, wq + 1)), written.eq(Mux(image_end, 0, written + 1))]
            with m.If(wq == N - 1):
                m.d.sync += wc.eq(Mux(wc == C - 1, 0, wc + 1))
        # `ahead` flips when the writer finishes an image (the reader still on it) and back when
        # the reader finishes its last step; both never happen in one cycle (the writer's last
        # word waits for the reader's last position to be passed, which ends the image).
        with m.If(write & image_end):
            m.d.sync += ahead.eq(1)
        with m.Elif(reader_image_end):
            m.d.sync += ahead.eq(0)

        # Reader: a position is ready when its last plane's word is written (or the image is).
        out_valid = Signal()
        last_plane_word = (C - 1) * N + rp // B if B > 1 else (C - 1) * N + rp
        readable = ahead | (written > last_plane_word)
        issue = readable & (~out_valid | self.maps.ready)
        lane = Signal(range(max(2, B)))
        eos, eoi = Signal(), Signal()
        for c, (_, rport) in enumerate(planes):
            m.d.comb += [rport.addr.eq(rp // B if B > 1 else rp), rport.en.eq(issue)]
        m.d.comb += reader_image_end.eq(issue & (rt == T - 1) & (rp == HW - 1))
        with m.If(issue):
            last = rp == HW - 1
            m.d.sync += [out_valid.eq(1), lane.eq(rp % B if B > 1 else 0), eos.eq(last), eoi.eq(last & (rt == T - 1)),
                         rp.eq(Mux(last, 0, rp + 1))]
            with m.If(last):
                m.d.sync += rt.eq(Mux(rt == T - 1, 0, rt + 1))
        with m.Elif(self.maps.ready):
            m.d.sync += out_valid.eq(0)
        beat = self.maps.payload
        m.d.comb += [self.maps.valid.eq(out_valid), beat.eos.eq(eos), beat.eoi.eq(eoi)]
        for c, (_, rport) in enumerate(planes):
            m.d.comb += beat.spikes[c].eq(rport.data.as_value().word_select(lane, 8))
        return m


class DenseEncodingLayer(wiring.Component):
    """`pixels` (8 uint8 pixels per beat) to `maps` (the encoding layer's spike map stream).
    Arguments as DenseConvLayer's (geometry: the conv over the image), and pixels_per_beat."""

    def __init__(self, geometry, weights, bias, theta_pos, theta_neg, *, leak_shift: int, steps: int, kind: str,
                 lanes: int, weight_width: int, current_width: int, membrane_width: int,
                 pixels_per_beat: int = PIXELS_PER_BEAT):
        if not isinstance(geometry, ConvGeometry):
            raise TypeError(f"geometry must be a ConvGeometry, not {geometry!r}")
        positions = geometry.in_height * geometry.in_width
        # Beats that may straddle two channel planes are cut into plane words first.
        self.aligner = (None if beats_tile_planes(geometry.in_channels, positions, pixels_per_beat) else
                        PlaneAligner(geometry.in_channels, positions, pixels_per_beat))
        self.replay = PixelReplay(geometry.in_channels, geometry.in_height, geometry.in_width, steps=steps,
                                  pixels_per_beat=pixels_per_beat, aligned=self.aligner is not None)
        self.conv = DenseConvLayer(geometry, weights, bias, theta_pos, theta_neg, leak_shift=leak_shift, steps=steps,
                                   kind=kind, lanes=lanes, weight_width=weight_width, current_width=current_width,
                                   membrane_width=membrane_width, input_kind="pixels")
        super().__init__({"pixels": In(stream.Signature(wide_pixel_layout(pixels_per_beat))),
                          "maps": Out(stream.Signature(self.conv.out_layout))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.replay, m.submodules.conv = self.replay, self.conv
        # A skid buffer between them: the conv's ready (its line buffer's free-row arithmetic)
        # would otherwise decide the replay's read and the line buffer's write in one cycle.
        m.submodules.link = link = SkidBuffer(self.replay.out_layout)
        if self.aligner is None:
            wiring.connect(m, wiring.flipped(self.pixels), self.replay.pixels)
        else:
            m.submodules.aligner = self.aligner
            wiring.connect(m, wiring.flipped(self.pixels), self.aligner.pixels)
            wiring.connect(m, self.aligner.words, self.replay.pixels)
        wiring.connect(m, self.replay.maps, link.w)
        wiring.connect(m, link.r, self.conv.maps_in)
        wiring.connect(m, self.conv.maps, wiring.flipped(self.maps))
        return m


def encoding_period_cycles(geometry: ConvGeometry, lanes: int, steps: int) -> int:
    """Cycles per image back to back when the replay keeps up (one position per cycle): the
    conv's period at T steps. The pixel input needs C·H·W/8 cycles per image, below T·H·W."""
    return schedule_cycles(geometry, lanes, steps=steps, images=3) - schedule_cycles(geometry, lanes, steps=steps,
                                                                                     images=2)
