"""IR + plan -> Verilog: one file per layer engine, plus the top that instantiates them.

    emit_rtl(net, plan, regmap, rtl_dir) -> Emitted(files, top_file, layers, logit_width)

Each layer engine (the plan names its gen.engines entry: hw.encoding.EncodingLayer,
hw.layer.SpikingLayer, hw.readout.ReadoutLayer) is built by that entry's checked factory
with that layer's parameters and weights and elaborated
on its own with `amaranth.back.verilog.convert` into `tern_<layer>.v` (module
`tern_<layer>`); its port list is read back from that file, and `hw.top.TernTop`
instantiates it by name, so every file is used and the top never re-elaborates a layer.
The top connects the engines along the plan's edges (gen.plan.Edge: source layer, input
stream of the consumer), forking a layer's events where several layers read it.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.back import rtlil, verilog

from hw.top import LayerModule, TernTop

from gen.engines import engine_named
from gen.engines.converters import map_shape, stream_formats as engine_stream_formats
from gen.errors import PlanError
from gen.ir import Network
from gen.ops import op_spec_named
from gen.plan import Plan
from gen.backend.regmap import MAGIC, RegisterMap, registers_for_hw

log = logging.getLogger(__name__)

TOP_MODULE = "tern_top"
TOP_FILE = "tern_top.v"
_PORT = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?([A-Za-z_][A-Za-z0-9_$]*)\s*;")


def module_name(layer_name: str) -> str:
    return f"tern_{layer_name}"


def engine_geometry(lp):
    """The hw.geometry object of a layer's main projection (its op's gen.ops entry)."""
    return op_spec_named(lp.geometry.op).hw_geometry(lp.geometry)


def build_engine(net: Network, lp, input_queue_depth: int | None = None):
    """The hw engine component of one layer, with its weights and widths from the plan.

    The layer's engine (gen.engines, named in the plan) gives the component and its
    arguments, checked against the constructor (gen.errors.FactoryError on a mismatch).
    input_queue_depth: the plan's depth for the queue in front of this layer's main input,
    for an engine that owns its input queue (default: the plan's edge; an engine with
    several inputs takes every edge's depth from the plan).
    """
    engine = engine_named(lp.engine, f"layer {lp.name!r}: ")
    if input_queue_depth is None:
        input_queue_depth = lp.inputs[0].queue_depth if lp.inputs else 0
    return engine.build(net.layer(lp.name), lp, net.wbits, net.timesteps, input_queue_depth)


def read_ports(text: str, module: str) -> tuple[tuple[str, str, int], ...]:
    """(name, "i"/"o", width) of `module`'s ports, from Verilog that Amaranth wrote."""
    start = re.search(rf"^module {re.escape(module)}\(", text, re.M)
    if start is None:
        raise RuntimeError(f"module {module} not found in the generated Verilog")
    end = text.index("endmodule", start.end())
    ports = []
    for line in text[start.end():end].splitlines():
        match = _PORT.match(line)
        if match:
            direction, msb, name = match.groups()
            ports.append((name, "i" if direction == "input" else "o", int(msb) + 1 if msb else 1))
    return tuple(ports)


def write_module(component, module: str, path: Path, rtlil_path: Path | None = None):
    """Elaborate `component` once into `path` (Verilog) as `module`; returns its ports.

    With `rtlil_path`, the same elaboration is also written as RTLIL: yosys reads that in
    a blink, where its Verilog frontend spends minutes on the per-word memory initialisers
    that Amaranth writes into the Verilog. (verilog.convert is rtlil.convert followed by
    this same RTLIL-to-Verilog step.)
    """
    rtlil_text = rtlil.convert(component, name=module, emit_src=False)
    text = verilog._convert_rtlil_text(rtlil_text)
    path.write_text(text)
    if rtlil_path is not None:
        rtlil_path.write_text(rtlil_text)
    return read_ports(text, module)


@dataclass(frozen=True)
class Emitted:
    files: tuple[Path, ...]            # every Verilog file, the top last
    rtlil_files: tuple[Path, ...]      # the same modules as RTLIL, for yosys
    top_file: Path
    top_module: str
    layers: tuple                      # hw.top.LayerModule per layer
    logit_width: int


def readout_logit_width(ports, num_classes: int) -> int:
    """L from the readout's result payload: K logits of L bits and a class index."""
    width = next(w for name, _, w in ports if name == "result__payload")
    cls_bits = max(1, (num_classes - 1).bit_length())
    logit_width, rest = divmod(width - cls_bits, num_classes)
    if rest:
        raise RuntimeError(f"result__payload of {width} bits is not {num_classes} logits and a "
                           f"{cls_bits}-bit class")
    return logit_width


def emit_rtl(net: Network, plan: Plan, regmap: RegisterMap, rtl_dir, model_id: int, progress=None,
             rtlil_dir=None) -> Emitted:
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    rtlil_dir = Path(rtlil_dir) if rtlil_dir is not None else rtl_dir
    rtlil_dir.mkdir(parents=True, exist_ok=True)
    files, rtlil_files, components = [], [], []
    specs = [engine_named(lp.engine, f"layer {lp.name!r}: ") for lp in plan.layers]
    for lp in plan.layers:
        try:
            components.append(build_engine(net, lp))
        except (TypeError, ValueError) as exc:   # a value the component refuses (FactoryError passes)
            raise PlanError(f"layer {lp.name!r}: the {lp.engine} engine refused its parameters: {exc}") from exc
    formats = {lp.name: stream_formats(spec, i == 0) for i, (lp, spec) in enumerate(zip(plan.layers, specs))}
    # An event engine's own input queue takes its edge; an event edge into a map engine gets a
    # queue in the top, in front of the converter (which waits while it reads a step out).
    owns_queue = {lp.name: spec.owns_input_queue and formats[lp.name][0] == "events"
                  for lp, spec in zip(plan.layers, specs)}
    modules = []
    for lp, spec, engine in zip(plan.layers, specs, components):
        module = module_name(lp.name)
        path = rtl_dir / f"{module}.v"
        ports = write_module(engine, module, path, rtlil_dir / f"{module}.il")
        log.info("wrote %s (%d ports)", path, len(ports))
        files.append(path)
        rtlil_files.append(rtlil_dir / f"{module}.il")
        # The queue of an edge lives in its consumer's engine when it has one, else in the top.
        consumers = plan.consumers(lp.name)
        consumers_queue = bool(consumers) and all(owns_queue[e.target] for e in consumers)
        modules.append(LayerModule(name=lp.name, module=module, kind=lp.kind, ports=ports,
                                   input_stream=lp.inputs[0].stream if lp.inputs else spec.input_stream,
                                   output_stream=spec.output_stream,
                                   out_addr_width=lp.out_addr_width,
                                   queue_depth=0 if consumers_queue or not spec.sends_events else lp.queue_depth,
                                   binary=lp.neuron == "binary",
                                   inputs=tuple((e.source, e.stream) for e in lp.inputs),
                                   in_format=formats[lp.name][0], out_format=formats[lp.name][1],
                                   map_shape=map_shape(net.layer(lp.name).shape), steps=net.timesteps))
        if progress is not None:
            progress(lp.name)
    logit_width = readout_logit_width(modules[-1].ports, net.num_classes)
    top = TernTop(modules, pixels_per_image=int(np.prod(net.input_shape)), num_classes=net.num_classes,
                  logit_width=logit_width, registers=registers_for_hw(regmap),
                  constants=register_constants(net, regmap, model_id), addr_width=regmap.addr_width)
    top_file = rtl_dir / TOP_FILE
    write_module(top, TOP_MODULE, top_file, rtlil_dir / f"{TOP_MODULE}.il")
    files.append(top_file)
    rtlil_files.append(rtlil_dir / f"{TOP_MODULE}.il")
    return Emitted(files=tuple(files), rtlil_files=tuple(rtlil_files), top_file=top_file, top_module=TOP_MODULE,
                   layers=tuple(modules), logit_width=logit_width)


def stream_formats(spec, first: bool) -> tuple[str, str]:
    """(what the engine reads, what it sends) as hw.top.LayerModule names them: "events",
    "map" (a dense engine's stream_format), "pixels"/"pixels8" for the first layer."""
    reads, sends = engine_stream_formats(spec)
    return (getattr(spec, "input_format", "pixels") if first else reads), sends


def register_constants(net: Network, regmap: RegisterMap, model_id: int) -> dict:
    return {"MAGIC": MAGIC, "REGMAP_VERSION": regmap.version, "MODEL_ID": model_id,
            "TIMESTEPS": net.timesteps, "NUM_CLASSES": net.num_classes,
            "PIXELS_PER_IMAGE": int(np.prod(net.input_shape)), "NUM_LAYERS": len(net.layers)}
