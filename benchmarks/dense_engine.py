"""The dense streaming engines at the co-designed model's size: yosys synth_xilinx resources
beside the dense family's cost model, and cycles per image.

    .venv/bin/python benchmarks/dense_engine.py [--lanes 16 8] [--encoding-lanes 16] [--out benchmarks]

The conv layer is the fast MNIST model's conv2 (hw.dense_conv.DenseConvLayer: 16 -> 32
channels, 28x28 input, 3x3, stride 2, padding 1, T = 1), the encoding layer its conv1
(hw.dense_encoding.DenseEncodingLayer: 1 -> 16 channels, 28x28, stride 1), both with random
4-bit weights over the whole signed range (a trained layer has many zero weights, which
synthesis removes: random weights are the expensive case). Writes dense_engine.json and
dense_engine.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amaranth.back import rtlil  # noqa: E402

from gen.engines.encoding_dense import SPEC as ENCODING_SPEC  # noqa: E402
from gen.engines.spiking_dense import SPEC as DENSE_SPEC, dense_context  # noqa: E402
from gen.backend.synth import count_cells, synthesise_module  # noqa: E402
from hw.dense_conv import DenseConvLayer, schedule_cycles  # noqa: E402
from hw.dense_encoding import DenseEncodingLayer  # noqa: E402
from hw.geometry import ConvGeometry  # noqa: E402
from sim.tb.reference import layer_parameters, layer_widths  # noqa: E402

GEOMETRY = ConvGeometry(16, 28, 28, 32, 3, 2, 1)
ENCODING_GEOMETRY = ConvGeometry(1, 28, 28, 16, 3, 1, 1)
WBITS, STEPS, LEAK = 4, 1, 2


def build(lanes: int, encoding: bool = False):
    geometry = ENCODING_GEOMETRY if encoding else GEOMETRY
    p = {"weight_width": WBITS, "weight_style": "random", "weight_seed": 11, "kind": "ternary"}
    max_input = 255 if encoding else 1
    weights, bias, theta_pos, theta_neg = layer_parameters(geometry, p, max_input)
    cw, mw = layer_widths(weights, bias, theta_pos, theta_neg, LEAK, STEPS, max_input)
    component = DenseEncodingLayer if encoding else DenseConvLayer
    layer = component(geometry, weights, bias, theta_pos, theta_neg, leak_shift=LEAK, steps=STEPS,
                      kind="ternary", lanes=lanes, weight_width=WBITS, current_width=cw, membrane_width=mw)
    return layer, {"accumulator_bits": cw, "membrane_bits": mw}


def measure(lanes: int, workdir: Path, encoding: bool = False) -> dict:
    layer, widths = build(lanes, encoding)
    geometry = ENCODING_GEOMETRY if encoding else GEOMETRY
    spec = ENCODING_SPEC if encoding else DENSE_SPEC
    name = f"dense_{'encoding' if encoding else 'conv'}_p{lanes}"
    il = workdir / f"{name}.il"
    il.write_text(rtlil.convert(layer, name=name, emit_src=False))   # the synthesis cache survives line edits
    start = time.monotonic()
    cells, cached = synthesise_module(name, [il], [], workdir / name, workdir)
    synth = count_cells(cells)
    ctx = dense_context(geometry, lanes, widths, STEPS, WBITS)
    estimate = spec.estimate(ctx, spec.memories(ctx))
    period = schedule_cycles(geometry, lanes, steps=STEPS, images=3) - schedule_cycles(geometry, lanes, steps=STEPS,
                                                                                       images=2)
    g = geometry
    return {"engine": type(layer).__name__, "layer": f"{g.in_channels}->{g.out_channels}, {g.in_height}x{g.in_width}, "
                                                     f"stride {g.stride}",
            "lanes": lanes, "synth": synth, "estimate": estimate, "cycles_per_image": period,
            "model_cycles": spec.cycles(ctx), "images_per_s_at_100MHz": round(100e6 / period),
            "synth_seconds": round(time.monotonic() - start, 1), "cached": cached, "widths": widths}


def markdown(rows) -> str:
    g = GEOMETRY
    lines = [
        "# Dense streaming conv engine: synthesis and cycles",
        "",
        f"`hw.dense_conv.DenseConvLayer` at the co-designed model's conv2 ({g.in_channels} -> {g.out_channels} "
        f"channels, {g.in_height}x{g.in_width} input, 3x3, stride {g.stride}, padding {g.padding}) and "
        f"`hw.dense_encoding.DenseEncodingLayer` at its conv1 (1 -> 16, 28x28, stride 1), T = {STEPS}, "
        f"{WBITS}-bit random weights (the expensive case: a trained layer's zero weights synthesise to nothing). "
        "yosys `synth_xilinx -family xc7` (gen/backend/synth.py) of the engine alone, beside the dense family's "
        "cost model (`gen/engines/spiking_dense.py`). Cycles per image: back-to-back images at one input beat "
        "per cycle, `hw.dense_conv.schedule_cycles` (equal to simulation: tests/test_hw_dense_conv.py).",
        "",
        "Regenerate: `.venv/bin/python benchmarks/dense_engine.py`.",
        "",
        "| engine | layer | lanes PO | LUT (yosys) | LUT (model) | FF (yosys) | FF (model) | BRAM36 (yosys) "
        "| BRAM36 (model) | DSP (yosys) | DSP (model) | cycles/image | images/s at 100 MHz |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, e = r["synth"], r["estimate"]
        lines.append(f"| {r['engine']} | {r['layer']} | {r['lanes']} | {s['luts']:,} | {e['luts']:,} | "
                     f"{s['ffs']:,} | {e['ffs']:,} | {s['bram36']:g} | {e['bram36']:g} | {s['dsps']} | {e['dsps']} | "
                     f"{r['cycles_per_image']:,} | {r['images_per_s_at_100MHz']:,} |")
    lines += [
        "",
        "* The model's LUT/FF coefficients are fitted to the two DenseConvLayer rows (rounded up, so the "
        "estimate stays above synthesis); the encoding layer's to its one row. At T = 1 there is no membrane "
        "memory (the LIF unit never reads R^-1 = 0, and synthesis removes it); the line buffer and the output "
        "FIFO are LUT RAM (RAM32M), the encoding layer's image buffer one BRAM.",
        "* The encoding layer's products of a pixel and a constant weight: yosys makes some DSP48E1s and the "
        "rest (weights 0, ±1, powers of two, some small ones) shifts and adds; a trained layer's weights decide "
        "the split.",
        "* The issue's bar of 1,000 cycles/image (100,000 images/s at 100 MHz) is met by conv2 at PO = 8 "
        "(994) and PO = 16 (784: the input rate, one position per cycle, binds). A `tests/test_hw_dense_registry.py` "
        "slow test checks the model against synthesis of a small layer with membranes (T = 2).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, nargs="+", default=[16, 8])
    parser.add_argument("--encoding-lanes", type=int, nargs="*", default=[16])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    args = parser.parse_args(argv)
    (ROOT / "sim_build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "sim_build") as tmp:     # ignored by git; yosys wants it below ROOT
        rows = [measure(lanes, Path(tmp)) for lanes in args.lanes]
        rows += [measure(lanes, Path(tmp), encoding=True) for lanes in args.encoding_lanes]
    for r in rows:
        print(json.dumps(r))
    out = args.out
    for name, text in (("dense_engine.json", json.dumps(rows, indent=1) + "\n"), ("dense_engine.md", markdown(rows))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
