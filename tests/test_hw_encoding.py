"""EncodingLayer (pixel-mode accumulator + T LIF sweeps) against gen.ir.golden."""
import numpy as np
import pytest

from hw.encoding import EncodingLayer
from hw.geometry import DenseGeometry
from sim.runner import cocotb_tests_in
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


# Every cocotb test of the bench must have run and passed (the runner raises on a failure).
TB_TESTS = cocotb_tests_in("sim.tb.encoding")


def run_encoding(geometry, lanes, kind="ternary", steps=3, leak_shift=2, weight_width=8,
                 weight_style="random", transactions=10_000, simulator="verilator", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    from sim.tb.encoding import build
    config = {"geometry": geometry, "lanes": lanes, "kind": kind, "steps": steps,
              "leak_shift": leak_shift, "weight_width": weight_width, "weight_style": weight_style,
              "weight_seed": 5}
    _, _, layer = build(config)
    return run_component(layer, "encoding_layer", "sim.tb.encoding", dict(config, transactions=transactions),
                         config, simulator, seed)


CONV = {"kind": "conv", "in_channels": 1, "in_height": 8, "in_width": 8, "out_channels": 4,
        "kernel": 3, "stride": 1, "padding": 1}
CONV_S2 = {"kind": "conv", "in_channels": 2, "in_height": 7, "in_width": 6, "out_channels": 2,
           "kernel": 5, "stride": 2, "padding": 2}
DENSE = {"kind": "dense", "in_features": 20, "out_features": 6}


@pytest.mark.parametrize("geometry,lanes,kind,steps", [(CONV, 2, "ternary", 4), (DENSE, 3, "binary", 2)])
def test_encoding_verilator(geometry, lanes, kind, steps):
    assert run_encoding(geometry, lanes, kind, steps).passed == TB_TESTS


def test_encoding_icarus():
    assert run_encoding(CONV_S2, 1, steps=2, transactions=1_500, simulator="icarus").passed == TB_TESTS


@pytest.mark.slow
@pytest.mark.parametrize("geometry,lanes,kind,steps,style", [
    (CONV_S2, 2, "ternary", 3, "extreme"),
    (CONV, 4, "binary", 1, "random"),
    ({"kind": "conv", "in_channels": 1, "in_height": 6, "in_width": 6, "out_channels": 3,
      "kernel": 1, "stride": 1, "padding": 0}, 3, "ternary", 5, "random"),
    (DENSE, 6, "ternary", 8, "extreme"),
])
def test_encoding_sweep(geometry, lanes, kind, steps, style):
    assert run_encoding(geometry, lanes, kind, steps, weight_style=style, transactions=20_000).passed == TB_TESTS


def test_encoding_rejects_bad_lanes():
    g = DenseGeometry(4, 6)
    with pytest.raises(ValueError, match=r"lanes must be one of \[1, 2, 3, 6\]"):
        EncodingLayer(g, np.zeros((6, 4), dtype=np.int64), np.zeros(6, dtype=np.int64), np.ones(6, dtype=np.int64),
                      -np.ones(6, dtype=np.int64), leak_shift=2, steps=2, kind="ternary", lanes=4,
                      weight_width=8, current_width=12, membrane_width=16)
