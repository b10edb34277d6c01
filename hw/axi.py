"""The AXI edge of the accelerator: pixel input, result output, control registers.

* `AxisPixelIn`: AXI4-Stream slave, 64-bit beats of 8 uint8 pixels (pixel i of a beat in
  bits [8i+7:8i]), the image's last beat padded and marked with TLAST. Emits the Pixel
  stream (docs/hardware.md). A short image (TLAST early) is completed with zero pixels, a
  long one (no TLAST on its last beat) has its extra beats dropped up to TLAST: either
  way the pipeline stays aligned and the next image is processed normally.
* `AxisResultOut`: Result stream to AXI4-Stream master: K logits as little-endian int32,
  then the class as int32, padded to whole 64-bit beats, TLAST on the image's last beat.
* `AxiLiteRegisters`: AXI4-Lite slave over a list of 32-bit registers; the list comes from
  `gen.backend.regmap` through the top, so the offsets have one source.

Port names are the ones Vivado infers interfaces from (`s_axis_*`, `m_axis_*`, `s_axi_*`).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.dense_encoding import wide_pixel_layout
from hw.event import PIXEL_LAYOUT
from hw.skid import SkidBuffer

AXIS_WIDTH = 64
PIXELS_PER_BEAT = AXIS_WIDTH // 8
WORD = 32
ACCESS_KINDS = ("ro", "rw", "w1p", "w1c")


def _positive_int(name, value, lo=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value!r}")
    return value


def beats_per_image(pixels: int) -> int:
    return -(-pixels // PIXELS_PER_BEAT)


def result_words(num_classes: int) -> int:
    """32-bit words per result: K logits and the class."""
    return num_classes + 1


def result_beats(num_classes: int) -> int:
    return -(-result_words(num_classes) // 2)


def result_layout(logit_width: int, num_classes: int) -> data.StructLayout:
    """The Result payload of docs/hardware.md (the same layout hw.readout emits)."""
    return data.StructLayout({"logits": data.ArrayLayout(signed(logit_width), num_classes),
                              "cls": unsigned(max(1, (num_classes - 1).bit_length()))})


class AxisPixelIn(wiring.Component):
    """AXI4-Stream (64-bit, TLAST per image) to the Pixel stream, one pixel per cycle.

    Pulses: `image_in` when an image's last pixel is handed on, `short_image` / `long_image`
    when a framing error is detected. `in_image` is high while part of an image has arrived.
    """

    def __init__(self, pixels_per_image: int):
        self.pixels_per_image = _positive_int("pixels_per_image", pixels_per_image)
        super().__init__({
            "s_axis_tdata": In(AXIS_WIDTH),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "pixels": Out(stream.Signature(PIXEL_LAYOUT)),
            "image_in": Out(1),
            "short_image": Out(1),
            "long_image": Out(1),
            "in_image": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.pixels_per_image
        beat = Signal(AXIS_WIDTH)
        beat_last = Signal()           # the held beat carried TLAST
        holding = Signal()             # a beat is held and its pixels are being sent
        sub = Signal(range(PIXELS_PER_BEAT))
        count = Signal(range(n))       # pixel index within the image
        padding = Signal()             # short image: sending zeros up to the image's end
        draining = Signal()            # long image: dropping beats up to TLAST

        image_end = count == n - 1
        beat_end = sub == PIXELS_PER_BEAT - 1
        lanes = [beat[8 * i:8 * i + 8] for i in range(PIXELS_PER_BEAT)]
        pixel = Signal(8)
        with m.Switch(sub):
            for i, lane in enumerate(lanes):
                with m.Case(i):
                    m.d.comb += pixel.eq(lane)

        sent = self.pixels.valid & self.pixels.ready
        # The held beat is finished by this transfer: its last pixel, or the image's last.
        release = sent & ~padding & (beat_end | image_end)
        m.d.comb += [
            self.pixels.valid.eq(holding | padding),
            # One unconditional driver per payload field (see the Mux): a field driven
            # under an `If` turns the payload into a `reg` written by several `always @*`
            # blocks, which 4-state SystemVerilog simulators may never run at time 0 (X).
            self.pixels.payload.value.eq(Mux(padding, 0, pixel)),
            self.pixels.payload.last.eq(image_end),
            self.s_axis_tready.eq(draining | (~padding & (~holding | release))),
            self.in_image.eq(holding | padding | draining | (count != 0)),
        ]

        with m.If(sent):
            m.d.sync += count.eq(count + 1)
            with m.If(~padding):
                m.d.sync += sub.eq(sub + 1)
            with m.If(image_end):
                m.d.sync += [count.eq(0), padding.eq(0)]
                m.d.comb += self.image_in.eq(1)
                with m.If(~padding & ~beat_last):
                    # TLAST missing on the image's last beat: drop beats up to TLAST.
                    m.d.comb += self.long_image.eq(1)
                    m.d.sync += draining.eq(1)
            with m.Elif(~padding & beat_end & beat_last):
                # TLAST came before the image was complete: finish it with zeros.
                m.d.comb += self.short_image.eq(1)
                m.d.sync += padding.eq(1)
        with m.If(release):
            m.d.sync += holding.eq(0)

        # Loading a beat comes last so that it overrides the release in the same cycle.
        accept = self.s_axis_tvalid & self.s_axis_tready
        # A long image is noticed on its last pixel: a beat accepted in that cycle is extra.
        with m.If(draining | self.long_image):
            with m.If(accept & self.s_axis_tlast):
                m.d.sync += draining.eq(0)
        with m.Elif(accept):
            m.d.sync += [beat.eq(self.s_axis_tdata), beat_last.eq(self.s_axis_tlast), holding.eq(1),
                         sub.eq(0)]
        return m


class AxisResultOut(wiring.Component):
    """Result stream to AXI4-Stream: (K logits, class) as int32 words, two per 64-bit beat.

    `image_out` pulses when the image's last beat is sent.
    """

    def __init__(self, logit_width: int, num_classes: int):
        self.logit_width = _positive_int("logit_width", logit_width)
        if logit_width > WORD:
            raise ValueError(f"logit_width must be at most {WORD} (logits travel as int32), not {logit_width!r}")
        self.num_classes = _positive_int("num_classes", num_classes, 2)
        super().__init__({
            "result": In(stream.Signature(result_layout(logit_width, num_classes))),
            "m_axis_tdata": Out(AXIS_WIDTH),
            "m_axis_tkeep": Out(AXIS_WIDTH // 8),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            "image_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        k = self.num_classes
        beats = result_beats(k)
        words = []
        for i in range(k):
            word = Signal(signed(WORD), name=f"logit{i}")
            m.d.comb += word.eq(self.result.payload.logits[i])   # sign-extends
            words.append(word)
        cls = Signal(WORD)
        m.d.comb += cls.eq(self.result.payload.cls)
        words_wide = Cat(*words, cls)
        shifter = Signal(beats * AXIS_WIDTH)
        index = Signal(range(beats))
        busy = Signal()

        m.d.comb += [
            self.result.ready.eq(~busy),
            self.m_axis_tdata.eq(shifter[:AXIS_WIDTH]),
            self.m_axis_tkeep.eq(Const(-1, AXIS_WIDTH // 8)),
            self.m_axis_tvalid.eq(busy),
            self.m_axis_tlast.eq(index == beats - 1),
        ]
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += [shifter.eq(words_wide), index.eq(0), busy.eq(1)]
        with m.If(self.m_axis_tvalid & self.m_axis_tready):
            m.d.sync += [shifter.eq(shifter >> AXIS_WIDTH), index.eq(index + 1)]
            with m.If(self.m_axis_tlast):
                m.d.sync += [busy.eq(0), index.eq(0)]
                m.d.comb += self.image_out.eq(1)
        return m


class AxiLiteRegisters(wiring.Component):
    """AXI4-Lite slave over 32-bit registers given as (name, offset, access) triples.

    Ports per register (lower-case name): `ro` In(32) value; `rw` Out(32) stored value;
    `w1p` Out(32) one-cycle pulse of the written ones; `w1c` In(32) flags and
    Out(32) `<name>_clear`, a one-cycle pulse of the written ones. Unmapped addresses read
    0 and ignore writes (OKAY response: a decode error would fault the processor).
    """

    def __init__(self, registers, addr_width: int = 12):
        self.addr_width = _positive_int("addr_width", addr_width, 3)
        regs = []
        for entry in registers:
            if not (isinstance(entry, tuple) and len(entry) == 3):
                raise ValueError(f"registers must hold (name, offset, access) triples, not {entry!r}")
            name, offset, access = entry
            if access not in ACCESS_KINDS:
                raise ValueError(f"access must be one of {', '.join(ACCESS_KINDS)}, not {access!r}")
            if not isinstance(offset, int) or offset % 4 or not 0 <= offset < (1 << addr_width):
                raise ValueError(f"offset must be word aligned and below {1 << addr_width:#x}, not {offset!r}")
            regs.append((name.lower(), offset, access))
        if len({o for _, o, _ in regs}) != len(regs) or len({n for n, _, _ in regs}) != len(regs):
            raise ValueError(f"registers must have unique names and offsets, not {registers!r}")
        self.registers = tuple(regs)
        members = {
            "s_axi_awaddr": In(addr_width), "s_axi_awprot": In(3), "s_axi_awvalid": In(1), "s_axi_awready": Out(1),
            "s_axi_wdata": In(WORD), "s_axi_wstrb": In(WORD // 8), "s_axi_wvalid": In(1), "s_axi_wready": Out(1),
            "s_axi_bresp": Out(2), "s_axi_bvalid": Out(1), "s_axi_bready": In(1),
            "s_axi_araddr": In(addr_width), "s_axi_arprot": In(3), "s_axi_arvalid": In(1), "s_axi_arready": Out(1),
            "s_axi_rdata": Out(WORD), "s_axi_rresp": Out(2), "s_axi_rvalid": Out(1), "s_axi_rready": In(1),
        }
        for name, _, access in regs:
            if access in ("ro", "w1c"):
                members[name] = In(WORD)
            else:
                members[name] = Out(WORD)
            if access == "w1c":
                members[f"{name}_clear"] = Out(WORD)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        aw_addr, aw_have = Signal(self.addr_width), Signal()
        w_data, w_strb, w_have = Signal(WORD), Signal(WORD // 8), Signal()

        m.d.comb += [
            self.s_axi_awready.eq(~aw_have),
            self.s_axi_wready.eq(~w_have),
            self.s_axi_bresp.eq(0),
            self.s_axi_rresp.eq(0),
            self.s_axi_arready.eq(~self.s_axi_rvalid),
        ]
        with m.If(self.s_axi_awvalid & self.s_axi_awready):
            m.d.sync += [aw_addr.eq(self.s_axi_awaddr), aw_have.eq(1)]
        with m.If(self.s_axi_wvalid & self.s_axi_wready):
            m.d.sync += [w_data.eq(self.s_axi_wdata), w_strb.eq(self.s_axi_wstrb), w_have.eq(1)]
        with m.If(self.s_axi_bvalid & self.s_axi_bready):
            m.d.sync += self.s_axi_bvalid.eq(0)

        write = aw_have & w_have & ~self.s_axi_bvalid
        mask = Cat(*[bit.replicate(8) for bit in w_strb])
        with m.If(write):
            m.d.sync += [aw_have.eq(0), w_have.eq(0), self.s_axi_bvalid.eq(1)]

        word = slice(2, self.addr_width)
        for name, offset, access in self.registers:
            hit = write & (aw_addr[word] == offset >> 2)
            if access == "rw":
                port = getattr(self, name)
                with m.If(hit):
                    m.d.sync += port.eq((port & ~mask) | (w_data & mask))
            elif access == "w1p":
                with m.If(hit):
                    m.d.comb += getattr(self, name).eq(w_data & mask)
            elif access == "w1c":
                with m.If(hit):
                    m.d.comb += getattr(self, f"{name}_clear").eq(w_data & mask)

        with m.If(self.s_axi_arvalid & self.s_axi_arready):
            m.d.sync += [self.s_axi_rvalid.eq(1), self.s_axi_rdata.eq(0)]
            with m.Switch(self.s_axi_araddr[word]):
                for name, offset, access in self.registers:
                    if access == "w1p":
                        continue   # reads 0
                    with m.Case(offset >> 2):
                        m.d.sync += self.s_axi_rdata.eq(getattr(self, name))
        with m.Elif(self.s_axi_rvalid & self.s_axi_rready):
            m.d.sync += self.s_axi_rvalid.eq(0)
        return m


class AxisPixelBeatsIn(wiring.Component):
    """AXI4-Stream (64-bit, TLAST per image) to a stream of whole beats, 8 pixels each, for an
    engine that takes them so (hw.dense_encoding.DenseEncodingLayer): one beat per cycle, so
    an image of C·H·W pixels takes C·H·W/8 cycles instead of AxisPixelIn's C·H·W.

    The beat is handed on as it arrives (pixel i of a beat in bits [8i, 8i+8) of both the
    AXI word and `pixels.payload.pixels`); `last` marks the image's last beat, counted here.
    Framing as AxisPixelIn's, per beat: a short image (TLAST early) is completed with zero
    beats, a long one (no TLAST on its last beat) has its extra beats dropped up to TLAST.
    A skid buffer (hw.skid) registers the output, so `s_axis_tready` is a function of
    registers only and the engine's ready does not reach the AXI port in the same cycle.
    Pulses and `in_image` as AxisPixelIn's. An image is ceil(C·H·W / 8) beats: the host
    zero-pads the last one (docs/build.md, "Input packing"), and the padding pixels pass on
    untouched (the engine reads only the image's C·H·W pixels).
    """

    def __init__(self, pixels_per_image: int):
        self.pixels_per_image = _positive_int("pixels_per_image", pixels_per_image)
        self.beats_per_image = -(-pixels_per_image // PIXELS_PER_BEAT)
        self.beat_layout = wide_pixel_layout()
        super().__init__({
            "s_axis_tdata": In(AXIS_WIDTH),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "pixels": Out(stream.Signature(self.beat_layout)),
            "image_in": Out(1),
            "short_image": Out(1),
            "long_image": Out(1),
            "in_image": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.beats_per_image
        m.submodules.out_buffer = skid = SkidBuffer(self.beat_layout)
        wiring.connect(m, skid.r, wiring.flipped(self.pixels))
        count = Signal(range(max(2, n)))   # beat index within the image
        padding = Signal()                 # short image: sending zero beats up to the image's end
        draining = Signal()                # long image: dropping beats up to TLAST

        image_end = count == n - 1
        beat = skid.w
        m.d.comb += [
            beat.valid.eq(padding | (self.s_axis_tvalid & ~draining)),
            beat.payload.pixels.eq(Mux(padding, 0, self.s_axis_tdata)),
            beat.payload.last.eq(image_end),
            self.s_axis_tready.eq(draining | (~padding & beat.ready)),
            self.in_image.eq(padding | draining | (count != 0)),
        ]
        sent = beat.valid & beat.ready
        with m.If(sent):
            m.d.sync += count.eq(Mux(image_end, 0, count + 1))
            with m.If(image_end):
                m.d.sync += padding.eq(0)
                m.d.comb += self.image_in.eq(1)
                with m.If(~padding & ~self.s_axis_tlast):
                    # TLAST missing on the image's last beat: drop beats up to TLAST.
                    m.d.comb += self.long_image.eq(1)
                    m.d.sync += draining.eq(1)
            with m.Elif(~padding & self.s_axis_tlast):
                # TLAST came before the image was complete: finish it with zero beats.
                m.d.comb += self.short_image.eq(1)
                m.d.sync += padding.eq(1)
        with m.If(draining & self.s_axis_tvalid & self.s_axis_tlast):
            m.d.sync += draining.eq(0)
        return m
