"""SpikingLayer (queue + accumulator + LIF sweep) against the SPEC §4 reference."""
import numpy as np
import pytest

from hw.geometry import ConvGeometry, DenseGeometry
from hw.layer import SpikingLayer
from hw.sweep import LIFSweep
from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def run_layer(geometry, lanes, kind="ternary", steps=3, leak_shift=2, weight_width=8,
              weight_style="random", transactions=10_000, simulator="verilator", seed=None, **extra):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    from sim.tb.layer import build
    config = {"geometry": geometry, "lanes": lanes, "kind": kind, "steps": steps,
              "leak_shift": leak_shift, "weight_width": weight_width, "weight_style": weight_style,
              "weight_seed": 3, **extra}
    _, _, layer = build(config)
    return run_component(layer, "spiking_layer", "sim.tb.layer", dict(config, transactions=transactions),
                         config, simulator, seed, testcase="layer_matches_reference")


CONV = {"kind": "conv", "in_channels": 2, "in_height": 6, "in_width": 5, "out_channels": 4,
        "kernel": 3, "stride": 1, "padding": 1}
CONV_S2 = {"kind": "conv", "in_channels": 1, "in_height": 7, "in_width": 7, "out_channels": 2,
           "kernel": 3, "stride": 2, "padding": 0}
DENSE = {"kind": "dense", "in_features": 24, "out_features": 8}


@pytest.mark.parametrize("geometry,lanes,kind,steps,leak_shift", [
    (CONV, 2, "ternary", 3, 2),
    (DENSE, 4, "binary", 4, 1),
])
def test_layer_verilator(geometry, lanes, kind, steps, leak_shift):
    assert run_layer(geometry, lanes, kind, steps, leak_shift).failed == 0


def test_layer_icarus():
    assert run_layer(CONV_S2, 1, transactions=1_500, simulator="icarus").failed == 0


@pytest.mark.slow
@pytest.mark.parametrize("geometry,lanes,kind,steps,leak_shift,style", [
    (CONV_S2, 2, "ternary", 2, 2, "extreme"),
    (CONV, 4, "ternary", 1, 2, "random"),
    (CONV, 1, "binary", 5, 3, "random"),
    ({"kind": "conv", "in_channels": 2, "in_height": 5, "in_width": 5, "out_channels": 3,
      "kernel": 5, "stride": 1, "padding": 2}, 3, "ternary", 4, 2, "random"),
    (DENSE, 8, "ternary", 8, 2, "extreme"),
    (DENSE, 1, "ternary", 2, 0, "random"),
])
def test_layer_sweep(geometry, lanes, kind, steps, leak_shift, style):
    assert run_layer(geometry, lanes, kind, steps, leak_shift, weight_style=style,
                     transactions=20_000).failed == 0


def layer_args():
    g = DenseGeometry(6, 4)
    return dict(geometry=g, weights=np.zeros((4, 6), dtype=np.int64), bias=np.zeros(4, dtype=np.int64),
                theta_pos=np.full(4, 3), theta_neg=np.full(4, -3), leak_shift=2, steps=2,
                kind="ternary", lanes=2, weight_width=4, current_width=8, membrane_width=10)


@pytest.mark.parametrize("change,message", [
    ({"lanes": 3}, r"lanes must be one of \[1, 2, 4\]"),
    ({"kind": "leaky"}, "kind must be one of ternary, binary, not 'leaky'"),
    ({"steps": 0}, "steps must be an integer >= 1, not 0"),
    ({"bias": np.zeros(3, dtype=np.int64)}, r"bias must have shape \(4,\), not \(3,\)"),
    ({"theta_neg": np.full(4, 3)}, "theta_neg must be below theta_pos in every channel"),
    ({"theta_pos": np.full(4, 0.5)}, "theta_pos must be integers"),
    ({"queue_depth": 1}, "queue_depth must be an integer >= 2, not 1"),
    ({"geometry": "dense"}, "geometry must be a ConvGeometry or DenseGeometry, not 'dense'"),
])
def test_layer_rejects_bad_parameters(change, message):
    args = {**layer_args(), **change}
    geometry = args.pop("geometry")
    error = TypeError if "geometry must" in message else ValueError
    with pytest.raises(error, match=message):
        SpikingLayer(geometry, args.pop("weights"), args.pop("bias"), args.pop("theta_pos"),
                     args.pop("theta_neg"), **args)
