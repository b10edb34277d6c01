"""The accelerator's top: AXI edges, the layer engines as modules, event queues, registers.

    s_axis (pixels) -> AxisPixelIn -> layer 0 -> queue -> layer 1 -> ... -> readout -> AxisResultOut -> m_axis
                                      s_axi <-> AxiLiteRegisters (control, model ID, counters, errors)

The layers form a DAG (a residual layer reads several sources): each layer lists its
inputs as (source layer, input stream), and the top connects the engines along those
edges, with a `hw.fork.StreamFork` where one layer's events feed several layers
(docs/hardware.md, "Graph-shaped hardware"). A chain is the DAG where every layer reads
the one before it; it builds exactly as before (no fork).

The layer engines are elaborated one Verilog file per layer by the generator; here they
are `Instance`s of those modules, described by `LayerModule` (module name and port list),
so the top's Verilog names each layer's module once and every file is used. All layers
run at once: layer l works on step t while layer l+1 works on step t−1, and images follow
back to back, because every link is a stream with back-pressure.

Timing: no ready passes combinationally from one engine to the next through the top. Every
boundary has a registered FIFO (an event queue, a consumer's own input queue, a dense
engine's output FIFO, a fork's buffer) or a skid buffer (`hw.skid`: behind the 8-pixel AXI
input, behind an EventsToMap), and a counter takes a beat's spikes through a register.

The register names the top drives are fixed here (`DRIVEN_REGISTERS`, `EVENTS_<i>`); their
offsets come from the caller (gen.backend.regmap), so the offsets have one source.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from formats.regmap import CONTROL_BITS, ERROR_BITS, STATUS_BITS
from hw.axi import AXIS_WIDTH, AxiLiteRegisters, AxisPixelBeatsIn, AxisPixelIn, AxisResultOut
from hw.dense_convert import EventsToMap, MapToEvents
from hw.event import event_layout
from hw.event_queue import EventQueue
from hw.fork import StreamFork, output_name
from hw.skid import SkidBuffer
from hw.ternary_stream import map_layout

CONSTANT_REGISTERS = ("MAGIC", "REGMAP_VERSION", "MODEL_ID", "TIMESTEPS", "NUM_CLASSES",
                      "PIXELS_PER_IMAGE", "NUM_LAYERS")
DRIVEN_REGISTERS = CONSTANT_REGISTERS + ("CONTROL", "STATUS", "ERRORS", "SCRATCH", "IMAGES_IN",
                                         "IMAGES_OUT", "BUSY_CYCLES_LO", "BUSY_CYCLES_HI")
# The bit positions are the register map's (formats.regmap), as the driver decodes them.
CONTROL_CLEAR_COUNTERS, CONTROL_CLEAR_ERRORS = CONTROL_BITS["CLEAR_COUNTERS"], CONTROL_BITS["CLEAR_ERRORS"]
ERROR_SHORT_IMAGE, ERROR_LONG_IMAGE = ERROR_BITS["SHORT_IMAGE"], ERROR_BITS["LONG_IMAGE"]
STATUS_BUSY, STATUS_IN_IMAGE = STATUS_BITS["BUSY"], STATUS_BITS["IN_IMAGE"]


@dataclass(frozen=True)
class LayerModule:
    """One layer engine as the top sees it: a Verilog module and its ports.

    ports: (name, "i" or "o", width) as Amaranth names a component's flattened members
    (`events_in__payload`, ...), plus `clk` and `rst`. input_stream/output_stream: the
    names of its input and output streams (`<name>__payload/valid/ready`), which the
    generator takes from the engine's registry entry (gen.engines); the top knows no
    layer kinds, only that the first layer takes the pixels, the last gives the result,
    and every other link carries spike events.
    """
    name: str
    module: str
    kind: str                   # the IR layer kind, for names and reports only
    ports: tuple[tuple[str, str, int], ...]
    input_stream: str
    output_stream: str
    out_addr_width: int = 0     # events this layer sends (not for the readout)
    queue_depth: int = 0        # queue the top puts after this layer; 0 when its consumers'
                                # engines have their own input queues (not for the readout)
    binary: bool = False
    # (source layer, input stream) of each of its inputs, in the engine's projection order;
    # () for a chain: the previous layer (the pixels for the first) into `input_stream`.
    inputs: tuple[tuple[str, str], ...] = ()
    # Stream formats (docs/hardware.md, "Dense streaming engines"): what the layer reads
    # ("events", "map", "pixels": one pixel per beat, "pixels8": 8 pixels per beat) and sends
    # ("events", "map"; the readout's result is neither). map_shape: the (C, H, W) of the
    # neurons it sends, for the converters at an event/map boundary; steps: T.
    in_format: str = "events"
    out_format: str = "events"
    map_shape: tuple[int, int, int] = (0, 0, 0)
    steps: int = 1

    def __post_init__(self):
        names = {p[0] for p in self.ports}
        for stream_name in (self.input_stream, self.output_stream, *(s for _, s in self.inputs)):
            for part in ("payload", "valid", "ready"):
                if f"{stream_name}__{part}" not in names:
                    raise ValueError(f"ports of {self.module!r} must include {stream_name}__{part}, not {sorted(names)}")

    def port_width(self, name: str) -> int:
        for port, _, width in self.ports:
            if port == name:
                return width
        raise KeyError(name)


PIXELS = "input"        # the source name of the pixels (gen.ir.INPUT)


def layer_inputs(layers) -> list[tuple[tuple[str, str], ...]]:
    """Each layer's (source, input stream) pairs; a layer without `inputs` reads the one before."""
    out = []
    for i, layer in enumerate(layers):
        out.append(layer.inputs or ((layers[i - 1].name if i else PIXELS, layer.input_stream),))
    return out


def _check_graph(layers):
    if len(layers) < 2:
        raise ValueError(f"layers must be at least two (pixels in, result out), not {len(layers)}")
    earlier = {}
    for layer, inputs in zip(layers, layer_inputs(layers)):
        for source, stream_name in inputs:
            if layer is layers[0]:
                if (source, stream_name) != (PIXELS, layer.input_stream) or len(inputs) != 1:
                    raise ValueError(f"layer {layer.name!r} must read only the pixels on {layer.input_stream!r}, "
                                     f"not {list(inputs)}")
                continue
            if source not in earlier:
                raise ValueError(f"layer {layer.name!r}: input {stream_name!r} must come from an earlier layer "
                                 f"that sends events, one of {sorted(earlier)}, not {source!r}")
            if earlier[source].out_format != "events" or layer.in_format != "events":
                continue        # a converter sits on this edge (checked where it is built)
            expected = 2 + earlier[source].out_addr_width
            if layer.port_width(f"{stream_name}__payload") != expected:
                raise ValueError(f"layer {layer.name!r}: {stream_name}__payload must be {expected} bits wide "
                                 f"(events of {source!r}), not {layer.port_width(f'{stream_name}__payload')}")
        earlier[layer.name] = layer
    for layer in layers[:-1]:
        if layer.out_format == "map":
            expected = map_layout(layer.map_shape[0]).size
            if layer.port_width(f"{layer.output_stream}__payload") != expected:
                raise ValueError(f"layer {layer.name!r}: {layer.output_stream}__payload must be {expected} bits "
                                 f"wide (a map of {layer.map_shape[0]} channels)")
            continue
        if layer.out_addr_width < 1 or layer.queue_depth == 1 or layer.queue_depth < 0:
            raise ValueError(f"layer {layer.name!r} must have out_addr_width >= 1 and queue_depth 0 or >= 2, "
                             f"not {layer.out_addr_width!r} and {layer.queue_depth!r}")
        expected = 2 + layer.out_addr_width
        payload = f"{layer.output_stream}__payload"
        if layer.port_width(payload) != expected:
            raise ValueError(f"layer {layer.name!r}: {payload} must be {expected} bits wide (a spike event), "
                             f"not {layer.port_width(payload)}")


class TernTop(wiring.Component):
    """The whole accelerator with the AXI port names Vivado infers interfaces from.

    registers: (name, offset, access) triples (gen.backend.regmap); constants: values of the
    read-only constant registers by name (MAGIC, MODEL_ID, ...).
    """

    def __init__(self, layers, *, pixels_per_image: int, num_classes: int, logit_width: int,
                 registers, constants: dict, addr_width: int = 12):
        self.layers = tuple(layers)
        _check_graph(self.layers)
        self.pixels_per_image, self.num_classes, self.logit_width = pixels_per_image, num_classes, logit_width
        names = {r[0] for r in registers}
        expected = set(DRIVEN_REGISTERS) | {f"EVENTS_{i}" for i in range(len(self.layers))}
        if names != expected:
            raise ValueError(f"registers must be exactly {sorted(expected)}, not {sorted(names)}")
        missing = set(CONSTANT_REGISTERS) - set(constants)
        if missing:
            raise ValueError(f"constants must give {sorted(CONSTANT_REGISTERS)}, missing {sorted(missing)}")
        self.constants = dict(constants)
        # Built here so that a bad parameter fails at construction, not at elaboration.
        # A first layer that takes 8 pixels per beat gets the AXI beats whole (one per cycle).
        wide = self.layers[0].in_format == "pixels8"
        self.pixel_in = AxisPixelBeatsIn(pixels_per_image) if wide else AxisPixelIn(pixels_per_image)
        self.result_out = AxisResultOut(logit_width, num_classes)
        self.regs = AxiLiteRegisters(tuple(registers), addr_width)
        result_width = self.layers[-1].port_width(f"{self.layers[-1].output_stream}__payload")
        if result_width != self.result_out.result.payload.shape().size:
            raise ValueError(f"the readout's result__payload must be {self.result_out.result.payload.shape().size} "
                             f"bits ({num_classes} logits of {logit_width} bits and the class), not {result_width}")
        members = {
            "aclk": In(1), "aresetn": In(1),
            "s_axis_tdata": In(AXIS_WIDTH), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(AXIS_WIDTH), "m_axis_tkeep": Out(AXIS_WIDTH // 8), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        }
        members.update({name: m for name, m in self.regs.signature.members.items() if name.startswith("s_axi_")})
        super().__init__(members)
        # Tell Vivado (module reference / IP packager) which interfaces the clock and reset
        # belong to, instead of leaving it to name-based inference.
        self.aclk = Signal(1, name="aclk", attrs={
            "X_INTERFACE_INFO": "xilinx.com:signal:clock:1.0 aclk CLK",
            "X_INTERFACE_PARAMETER": "ASSOCIATED_BUSIF s_axis:m_axis:s_axi, ASSOCIATED_RESET aresetn"})
        self.aresetn = Signal(1, name="aresetn", attrs={
            "X_INTERFACE_INFO": "xilinx.com:signal:reset:1.0 aresetn RST",
            "X_INTERFACE_PARAMETER": "POLARITY ACTIVE_LOW"})

    def elaborate(self, platform):
        m = Module()
        # aclk/aresetn are ports so Vivado sees AXI names; aresetn is synchronous to aclk
        # (proc_sys_reset provides it so).
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]

        m.submodules.pixel_in = pixel_in = self.pixel_in
        m.submodules.result_out = result_out = self.result_out
        m.submodules.regs = regs = self.regs
        self._wire_axi(m, pixel_in, result_out, regs)

        # Layer instances, each with a signal per port.
        port_signals = []
        for i, layer in enumerate(self.layers):
            signals = {name: Signal(width, name=f"{layer.name}_{name}") for name, _, width in layer.ports}
            kwargs = {}
            for name, direction, _ in layer.ports:
                if name == "clk":
                    kwargs["i_clk"] = ClockSignal()
                elif name == "rst":
                    kwargs["i_rst"] = ResetSignal()
                else:
                    kwargs[f"{direction}_{name}"] = signals[name]
            m.submodules[f"u_{layer.name}"] = Instance(layer.module, **kwargs)
            port_signals.append(signals)

        # Pixels into the first layer: one per beat, or the AXI beats of 8 (AxisPixelBeatsIn).
        first, first_in = port_signals[0], self.layers[0].input_stream
        pixels = pixel_in.pixels
        m.d.comb += [
            first[f"{first_in}__payload"].eq(pixels.payload),
            first[f"{first_in}__valid"].eq(pixels.valid),
            pixels.ready.eq(first[f"{first_in}__ready"]),
        ]
        # Layer -> (queue) -> (fork) -> its consumers along the edges; count each layer's
        # spike events on its way out.
        event_counts = []
        clear_counters = getattr(regs, "control")[CONTROL_CLEAR_COUNTERS]
        signals_of = {layer.name: signals for layer, signals in zip(self.layers, port_signals)}
        edges = [(source, signals_of[layer.name], stream_name, layer)
                 for layer, inputs in zip(self.layers, layer_inputs(self.layers)) for source, stream_name in inputs]
        for i, layer in enumerate(self.layers[:-1]):
            src = _stream(port_signals[i], layer.output_stream)
            dsts = [self._converted(m, layer, consumer, _stream(signals, stream_name), k)
                    for k, (source, signals, stream_name, consumer) in
                    enumerate(e for e in edges if e[0] == layer.name)]
            out = src
            if layer.queue_depth:
                queue = EventQueue(layer.out_addr_width, layer.queue_depth, binary=layer.binary)
                m.submodules[f"queue_{layer.name}"] = queue
                m.d.comb += [
                    queue.w.payload.eq(src["payload"]),
                    queue.w.valid.eq(src["valid"]),
                    src["ready"].eq(queue.w.ready),
                ]
                out = {"payload": queue.r.payload, "valid": queue.r.valid, "ready": queue.r.ready}
            self._connect_consumers(m, layer, out, dsts)
            event_counts.append(self._event_counter(m, layer, src, clear_counters))
        # The readout's results out; it sends no events.
        last = _stream(port_signals[-1], self.layers[-1].output_stream)
        m.d.comb += [
            result_out.result.payload.eq(last["payload"]),
            result_out.result.valid.eq(last["valid"]),
            last["ready"].eq(result_out.result.ready),
        ]
        event_counts.append(Const(0, 32))
        for i, count in enumerate(event_counts):
            m.d.comb += getattr(regs, f"events_{i}").eq(count)
        self._status(m, pixel_in, result_out, regs, clear_counters)
        return m

    def _event_counter(self, m, layer, src, clear):
        """EVENTS_i: the spikes of every beat the layer sends, counted one cycle behind the
        beat (its spikes are registered first), so the beat's payload (an engine's memory
        read data) feeds only a balanced adder tree before a register, and the 32-bit
        addition starts from registers."""
        beat_spikes = _spikes_of_beat(layer, src["payload"])
        sent = Signal.like(beat_spikes, name=f"spikes_{layer.name}")
        count = Signal(32, name=f"events_{layer.name}")
        m.d.sync += sent.eq(Mux(src["valid"] & src["ready"] & ~clear, beat_spikes, 0))
        with m.If(clear):
            m.d.sync += count.eq(0)
        with m.Else():
            m.d.sync += count.eq(count + sent)
        return count

    def _converted(self, m, producer, consumer, dst, k):
        """The stream an edge's producer side drives: the consumer's port, or a converter in
        front of it where one end sends events and the other reads maps."""
        if producer.out_format == consumer.in_format:
            return dst
        C, H, W = producer.map_shape
        if producer.out_format == "events" and consumer.in_format == "map":
            conv, port_in, port_out = EventsToMap(C, H, W, steps=producer.steps), "events_in", "maps"
        elif producer.out_format == "map" and consumer.in_format == "events":
            conv, port_in, port_out = MapToEvents(C, H, W), "maps_in", "events"
        else:
            raise ValueError(f"layer {consumer.name!r} reads {consumer.in_format}, which layer {producer.name!r} "
                             f"({producer.out_format}) cannot feed")
        m.submodules[f"convert_{producer.name}_{consumer.name}_{k}"] = conv
        conv_in, conv_out = getattr(conv, port_in), getattr(conv, port_out)
        if isinstance(conv, EventsToMap):
            # Its read-out issues from the consumer's ready and sends its map memory's read data:
            # a skid buffer keeps both out of the consumer's cycle (a MapToEvents sends into the
            # consumer's own input queue, a registered FIFO).
            skid = SkidBuffer(conv.out_layout)
            m.submodules[f"skid_{producer.name}_{consumer.name}_{k}"] = skid
            wiring.connect(m, conv_out, skid.w)
            conv_out = skid.r
        if len(conv_out.payload.as_value()) != len(dst["payload"]):
            raise ValueError(f"layer {consumer.name!r}: its input is {len(dst['payload'])} bits wide, the converter "
                             f"from {producer.name!r} sends {len(conv_out.payload.as_value())}")
        m.d.comb += [dst["payload"].eq(conv_out.payload), dst["valid"].eq(conv_out.valid),
                     conv_out.ready.eq(dst["ready"])]
        return {"payload": conv_in.payload, "valid": conv_in.valid, "ready": conv_in.ready}

    def _connect_consumers(self, m, layer, out, dsts):
        """One consumer: a direct link (its engine queues its input itself). Several: a fork,
        every beat to each of them. None: the events are drained."""
        if len(dsts) == 1:
            dst = dsts[0]
            m.d.comb += [
                dst["payload"].eq(out["payload"]),
                dst["valid"].eq(out["valid"]),
                out["ready"].eq(dst["ready"]),
            ]
        elif dsts:
            shape = map_layout(layer.map_shape[0]) if layer.out_format == "map" else event_layout(layer.out_addr_width)
            fork = StreamFork(shape, len(dsts))
            m.submodules[f"fork_{layer.name}"] = fork
            m.d.comb += [
                fork.w.payload.eq(out["payload"]),
                fork.w.valid.eq(out["valid"]),
                out["ready"].eq(fork.w.ready),
            ]
            for k, dst in enumerate(dsts):
                branch = getattr(fork, output_name(k))
                m.d.comb += [
                    dst["payload"].eq(branch.payload),
                    dst["valid"].eq(branch.valid),
                    branch.ready.eq(dst["ready"]),
                ]
        else:
            m.d.comb += out["ready"].eq(1)

    def _wire_axi(self, m, pixel_in, result_out, regs):
        m.d.comb += [
            pixel_in.s_axis_tdata.eq(self.s_axis_tdata),
            pixel_in.s_axis_tvalid.eq(self.s_axis_tvalid),
            pixel_in.s_axis_tlast.eq(self.s_axis_tlast),
            self.s_axis_tready.eq(pixel_in.s_axis_tready),
            self.m_axis_tdata.eq(result_out.m_axis_tdata),
            self.m_axis_tkeep.eq(result_out.m_axis_tkeep),
            self.m_axis_tvalid.eq(result_out.m_axis_tvalid),
            self.m_axis_tlast.eq(result_out.m_axis_tlast),
            result_out.m_axis_tready.eq(self.m_axis_tready),
        ]
        for name, member in regs.signature.members.items():
            if name.startswith("s_axi_"):
                if member.flow == wiring.In:
                    m.d.comb += getattr(regs, name).eq(getattr(self, name))
                else:
                    m.d.comb += getattr(self, name).eq(getattr(regs, name))

    def _status(self, m, pixel_in, result_out, regs, clear_counters):
        for name in CONSTANT_REGISTERS:
            m.d.comb += getattr(regs, name.lower()).eq(Const(self.constants[name] & 0xFFFFFFFF, 32))
        images_in, images_out = Signal(32), Signal(32)
        in_flight = Signal(32)          # images whose last pixel went in and whose result has not left
        busy_cycles = Signal(64)
        busy = Signal()
        m.d.comb += busy.eq((in_flight != 0) | pixel_in.in_image)
        m.d.sync += in_flight.eq(in_flight + pixel_in.image_in - result_out.image_out)
        with m.If(clear_counters):
            m.d.sync += [images_in.eq(0), images_out.eq(0), busy_cycles.eq(0)]
        with m.Else():
            m.d.sync += [images_in.eq(images_in + pixel_in.image_in),
                         images_out.eq(images_out + result_out.image_out),
                         busy_cycles.eq(busy_cycles + busy)]
        errors = Signal(2)
        clear = regs.errors_clear[:2] | (regs.control[CONTROL_CLEAR_ERRORS].replicate(2))
        m.d.sync += errors.eq((errors & ~clear) | _bits({ERROR_SHORT_IMAGE: pixel_in.short_image,
                                                          ERROR_LONG_IMAGE: pixel_in.long_image}, 2))
        m.d.comb += [
            regs.errors.eq(errors),
            regs.status.eq(_bits({STATUS_BUSY: busy, STATUS_IN_IMAGE: pixel_in.in_image}, 2)),
            regs.images_in.eq(images_in),
            regs.images_out.eq(images_out),
            regs.busy_cycles_lo.eq(busy_cycles[:32]),
            regs.busy_cycles_hi.eq(busy_cycles[32:]),
        ]


def _spikes_of_beat(layer, payload):
    """The spikes one beat of a layer's output carries: an event is one (its `eos` none), a
    map beat one per channel whose code fires (EVENTS_i counts the same spikes either way)."""
    if layer.out_format == "map":
        beat = data.View(map_layout(layer.map_shape[0]), payload)
        return _balanced_sum([beat.spikes[c].fire for c in range(layer.map_shape[0])])
    event = data.View(event_layout(layer.out_addr_width), payload)
    return ~event.eos


def _balanced_sum(values: list):
    """The sum of `values` as a tree of depth log2(n) (Python's sum() would chain n adders)."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i] for i in range(0, len(values), 2)]
    return values[0]


def _stream(signals: dict, name: str) -> dict:
    """The payload, valid and ready signals of one stream of a layer instance."""
    return {part: signals[f"{name}__{part}"] for part in ("payload", "valid", "ready")}


def _bits(by_index: dict, width: int):
    """A `width`-bit value with signal by_index[i] at bit i."""
    from amaranth.hdl import Cat
    return Cat(*[by_index.get(i, Const(0, 1)) for i in range(width)])
