"""DenseReadout (matrix-vector readout over a dense map stream): logits and class against
gen.ir.golden under random idle input and result back-pressure, ternary and binary input,
several lane counts; cycles per image back to back equal to readout_cycles; parameter checks."""
import json

import numpy as np
import pytest

from hw.dense_readout import DenseReadout
from hw.geometry import ConvGeometry, DenseGeometry
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def run_readout(channels, height, width, classes, lanes, steps, testcase="dense_readout_matches_reference",
                tmp_path=None, seed=None, **extra):
    if "verilator" not in available_simulators():
        pytest.skip("verilator is not installed")
    from sim.tb.dense_readout import build
    config = {"channels": channels, "height": height, "width": width, "classes": classes, "lanes": lanes,
              "steps": steps, "weight_width": 8, "weight_style": "random", "weight_seed": 7}
    params = dict(config, images=6, **extra)
    if tmp_path is not None:
        params["report"] = str(tmp_path / "report.json")
    return run_component(build(config)[3], "dense_readout", "sim.tb.dense_readout", params, config, "verilator",
                         seed, testcase=testcase)


@pytest.mark.parametrize("lanes,binary_input", [(2, False), pytest.param(5, True, marks=pytest.mark.slow)])
def test_dense_readout_matches_golden(lanes, binary_input):
    result = run_readout(4, 3, 3, 10, lanes, 2, binary_input=binary_input, idle=0.3, backpressure=0.5)
    assert result.passed == ("dense_readout_matches_reference",)


def test_dense_readout_cycles_match_the_model(tmp_path):
    result = run_readout(4, 3, 3, 10, 2, 2, testcase="dense_readout_cycles", tmp_path=tmp_path)
    assert result.passed == ("dense_readout_cycles",)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["periods"] == [report["model_cycles"]] * 2


@pytest.mark.parametrize("kwargs,message", [
    ({"geometry": ConvGeometry(1, 2, 2, 2, 1)}, "geometry must be a DenseGeometry"),
    ({"channels": 5}, "channels must divide the 36 input features, not 5"),
    ({"lanes": 4}, r"lanes must be one of \[1, 2, 5, 10\]"),
    ({"weights": np.full((10, 36), 200)}, "weights must fit weight_width = 8 bits"),
])
def test_dense_readout_rejects_bad_parameters(kwargs, message):
    base = dict(geometry=DenseGeometry(36, 10), weights=np.ones((10, 36), int), bias=[0] * 10, channels=4, lanes=2,
                weight_width=8, steps=2, current_width=8, logit_width=10)
    args = {**base, **kwargs}
    geometry, weights, bias = args.pop("geometry"), args.pop("weights"), args.pop("bias")
    with pytest.raises((ValueError, TypeError), match=message):
        DenseReadout(geometry, weights, bias, **args)
