"""ReadoutLayer (queue + accumulator over T steps + argmax) against gen.golden."""
import numpy as np
import pytest

from hw.geometry import DenseGeometry
from hw.readout import ReadoutLayer, result_layout
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def run_readout(geometry, lanes, steps=3, weight_width=8, weight_style="random", transactions=10_000,
                simulator="verilator", seed=None):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    from sim.tb.readout import build
    config = {"geometry": geometry, "lanes": lanes, "steps": steps, "weight_width": weight_width,
              "weight_style": weight_style, "weight_seed": 11}
    *_, layer = build(config)
    return run_component(layer, "readout_layer", "sim.tb.readout", dict(config, transactions=transactions),
                         config, simulator, seed)


DENSE = {"kind": "dense", "in_features": 32, "out_features": 10}


@pytest.mark.parametrize("geometry,lanes,steps,style", [(DENSE, 5, 3, "random"), (DENSE, 10, 1, "extreme")])
def test_readout_verilator(geometry, lanes, steps, style):
    assert run_readout(geometry, lanes, steps, weight_style=style).failed == 0


def test_readout_icarus():
    assert run_readout(DENSE, 2, 2, transactions=1_500, simulator="icarus").failed == 0


@pytest.mark.slow
@pytest.mark.parametrize("geometry,lanes,steps,style", [
    (DENSE, 1, 8, "max"),
    ({"kind": "dense", "in_features": 50, "out_features": 3}, 3, 4, "random"),
    ({"kind": "conv", "in_channels": 2, "in_height": 4, "in_width": 4, "out_channels": 2,
      "kernel": 3, "stride": 1, "padding": 0}, 2, 2, "random"),
])
def test_readout_sweep(geometry, lanes, steps, style):
    assert run_readout(geometry, lanes, steps, weight_style=style, transactions=20_000).failed == 0


def test_result_layout_matches_the_contract():
    layout = result_layout(18, 10)
    assert layout.members["cls"].width == 4 and layout.size == 10 * 18 + 4
    assert result_layout(8, 1).members["cls"].width == 1


@pytest.mark.parametrize("change,message", [
    ({"logit_width": 1}, "logit_width must be an integer >= 2, not 1"),
    ({"steps": 0}, "steps must be an integer >= 1, not 0"),
    ({"lanes": 4}, r"lanes must be one of \[1, 2, 5, 10\]"),
    ({"bias": np.zeros(9, dtype=np.int64)}, r"bias must have shape \(10,\), not \(9,\)"),
])
def test_readout_rejects_bad_parameters(change, message):
    args = dict(bias=np.zeros(10, dtype=np.int64), lanes=2, weight_width=8, steps=2, current_width=12,
                logit_width=16)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        ReadoutLayer(DenseGeometry(4, 10), np.zeros((10, 4), dtype=np.int64), **args)
