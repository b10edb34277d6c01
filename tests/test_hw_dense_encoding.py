"""DenseEncodingLayer (8-pixel input beats, the image replayed T times, one pixel window per
cycle): bit-exact against gen.ir.golden under random idle input and back-pressure; its period
back to back equal to the conv schedule; PixelReplay's parameter checks."""
import json

import pytest

from hw.dense_encoding import PixelReplay
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def run_encoding(geometry, lanes, kind, steps, testcase="dense_encoding_matches_reference", tmp_path=None,
                 seed=None, **extra):
    if "verilator" not in available_simulators():
        pytest.skip("verilator is not installed")
    from sim.tb.dense_encoding import build
    config = {"geometry": geometry, "lanes": lanes, "kind": kind, "steps": steps, "leak_shift": 2,
              "weight_width": 4, "weight_seed": 9}
    params = dict(config, images=3, **extra)
    if tmp_path is not None:
        params["report"] = str(tmp_path / "report.json")
    return run_component(build(config)[2], "dense_encoding", "sim.tb.dense_encoding", params, config, "verilator",
                         seed, testcase=testcase)


GEOMETRY = {"kind": "conv", "in_channels": 1, "in_height": 8, "in_width": 8, "out_channels": 4, "kernel": 3,
            "stride": 1, "padding": 1}


def test_dense_encoding_matches_golden():
    assert run_encoding(GEOMETRY, 2, "ternary", 2, idle=0.3, backpressure=0.4).passed == \
        ("dense_encoding_matches_reference",)


def test_dense_encoding_period_matches_the_schedule(tmp_path):
    result = run_encoding(GEOMETRY, 2, "ternary", 2, testcase="dense_encoding_cycles", tmp_path=tmp_path)
    assert result.passed == ("dense_encoding_cycles",)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["periods"][1:] == [report["model_cycles"]] * 2


@pytest.mark.parametrize("kwargs,message", [
    ({"channels": 2, "height": 3, "width": 3},
     "pixels_per_beat must divide the 9 positions of a channel when there are 2 channels"),
    ({"steps": 0}, "steps must be an integer >= 1, not 0"),
])
def test_pixel_replay_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PixelReplay(**{"channels": 1, "height": 8, "width": 8, "steps": 2, **kwargs})
