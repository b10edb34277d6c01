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
    assert run_layer(geometry, lanes, kind, steps, leak_shift).passed == ("layer_matches_reference",)


def test_layer_icarus():
    assert run_layer(CONV_S2, 1, transactions=1_500, simulator="icarus").passed == ("layer_matches_reference",)


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
                     transactions=20_000).passed == ("layer_matches_reference",)


def layer_args():
    g = DenseGeometry(6, 4)
    return dict(geometry=g, weights=np.zeros((4, 6), dtype=np.int64), bias=np.zeros(4, dtype=np.int64),
                theta_pos=np.full(4, 3), theta_neg=np.full(4, -3), leak_shift=2, steps=2,
                kind="ternary", lanes=2, weight_width=4, current_width=8, membrane_width=10)


@pytest.mark.parametrize("change,message", [
    ({"lanes": 3}, r"lanes must be one of \[1, 2, 4\]"),
    ({"kind": "leaky"}, "kind must be one of ternary, binary, if_subtract, msat, not 'leaky'"),
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


# -- several projections (residual layers): the join and the summed currents -------------------

def run_multi_layer(projections, lanes, kind="ternary", steps=3, leak_shift=2, queue_depth=2,
                    weight_style="random", transactions=6_000, idle=(0.3, 0.6, 0.1), seed=None, **extra):
    if "verilator" not in available_simulators():
        pytest.skip("verilator is not installed")
    from sim.tb.multi_layer import build
    config = {"projections": projections, "lanes": lanes, "kind": kind, "steps": steps,
              "leak_shift": leak_shift, "weight_width": 8, "weight_style": weight_style,
              "weight_seed": 5, "queue_depth": queue_depth, **extra}
    layer = build(config)
    params = dict(config, transactions=transactions, idle=list(idle[:len(projections)]))
    return run_component(layer, "multi_layer", "sim.tb.multi_layer", params, config, "verilator", seed,
                         testcase="multi_layer_matches_reference")


MAIN_3X3 = {"source": "block_in", "geometry": {"kind": "conv", "in_channels": 3, "in_height": 6,
                                               "in_width": 6, "out_channels": 4, "kernel": 3,
                                               "stride": 1, "padding": 1}}
IDENTITY = {"source": "stem", "geometry": {"kind": "identity", "channels": 4, "height": 6, "width": 6}}
SHORTCUT_1X1_S2 = {"source": "stem_big", "geometry": {"kind": "conv", "in_channels": 2, "in_height": 11,
                                                      "in_width": 11, "out_channels": 4, "kernel": 1,
                                                      "stride": 2, "padding": 0}}


@pytest.mark.parametrize("projections,lanes,kind,queue_depth", [
    ([MAIN_3X3, IDENTITY, SHORTCUT_1X1_S2], 2, "ternary", 2),
    ([{"source": "hidden", "geometry": {"kind": "dense", "in_features": 20, "out_features": 6}},
      {"source": "skip", "geometry": {"kind": "identity", "channels": 6}}], 3, "binary", 3),
])
def test_multi_layer_verilator(projections, lanes, kind, queue_depth):
    """Identity, 1×1 stride-2 and 3×3 projections summed, smallest queues, every input idle
    in its own share of cycles and the output under random back-pressure."""
    assert run_multi_layer(projections, lanes, kind, queue_depth=queue_depth).passed == ("multi_layer_matches_reference",)


@pytest.mark.slow
@pytest.mark.parametrize("projections,lanes,kind,steps,style", [
    ([MAIN_3X3, SHORTCUT_1X1_S2], 4, "binary", 2, "extreme"),
    ([IDENTITY, MAIN_3X3], 1, "ternary", 4, "random"),
    ([IDENTITY], 2, "ternary", 2, "random"),
])
def test_multi_layer_sweep(projections, lanes, kind, steps, style):
    assert run_multi_layer(projections, lanes, kind, steps=steps, weight_style=style,
                           transactions=12_000).passed == ("multi_layer_matches_reference",)


def test_one_conv_projection_builds_the_one_projection_engine():
    """A list of one conv projection gives exactly today's engine (same Verilog)."""
    from amaranth.back import verilog
    from hw.projection import Projection
    args = layer_args()
    g = ConvGeometry(2, 5, 5, 4, 3, 1, 1)
    w = np.arange(np.prod(g.weight_shape)).reshape(g.weight_shape) % 15 - 7
    del args["geometry"], args["weights"]
    plain = SpikingLayer(g, w, args.pop("bias"), args.pop("theta_pos"), args.pop("theta_neg"), **args)
    listed = SpikingLayer(None, None, plain.sweep.bias, plain.sweep.theta_pos, plain.sweep.theta_neg,
                          projections=[Projection("x", g, w)], **args)
    assert listed.in_ports == (("x", "events_in", plain.in_addr_width),)
    assert verilog.convert(listed, name="l", emit_src=False) == verilog.convert(plain, name="l", emit_src=False)


@pytest.mark.parametrize("change,message", [
    ({"geometry": DenseGeometry(6, 4)}, "geometry and weights must be None when projections are given"),
    ({"projections": []}, "projections must be a non-empty list"),
    ({"projections": "same_source"}, "projections must read distinct sources"),
    ({"projections": "other_shape"}, "projections must all write the same layer shape"),
    ({"queue_depth": [4]}, r"queue_depth must be an integer or one per projection \(2\)"),
    ({"queue_depth": [4, 1]}, "queue_depth must be an integer >= 2, not 1"),
])
def test_multi_layer_rejects_bad_parameters(change, message):
    from hw.projection import IdentityGeometry, Projection
    dense = Projection("a", DenseGeometry(6, 4), np.zeros((4, 6), dtype=np.int64))
    skip = Projection("b", IdentityGeometry(4), np.ones(4, dtype=np.int64))
    choices = {"same_source": [dense, Projection("a", IdentityGeometry(4), np.ones(4, dtype=np.int64))],
               "other_shape": [dense, Projection("b", IdentityGeometry(5), np.ones(5, dtype=np.int64))]}
    args = {**layer_args(), "geometry": None, "weights": None, "projections": [dense, skip], **change}
    if isinstance(args["projections"], str):
        args["projections"] = choices[args["projections"]]
    with pytest.raises(ValueError, match=message):
        SpikingLayer(args.pop("geometry"), args.pop("weights"), args.pop("bias"), args.pop("theta_pos"),
                     args.pop("theta_neg"), **args)
