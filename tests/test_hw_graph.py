"""Fork → two engines → join: a residual block in hardware (sim/tb/graph.py) against
gen.ir.golden, with every queue and the fork at their smallest depth, random idle input and
random back-pressure on the output: no deadlock (a timeout would fail) and bit-exact."""
import pytest

from sim.tb.harness import run_component
from sim.toolchain import available_simulators


def conv(c, h, w, o, k, stride, padding):
    return {"kind": "conv", "in_channels": c, "in_height": h, "in_width": w, "out_channels": o,
            "kernel": k, "stride": stride, "padding": padding}


# Identity shortcut: x [4,6,6] → first 3×3 → second 3×3 + x.
IDENTITY_BLOCK = {"first": {"source": "x", "geometry": conv(4, 6, 6, 4, 3, 1, 1)},
                  "second": [{"source": "first", "geometry": conv(4, 6, 6, 4, 3, 1, 1)},
                             {"source": "x", "geometry": {"kind": "identity", "channels": 4,
                                                          "height": 6, "width": 6}}]}
# Projection shortcut: x [2,8,8] → first 3×3 stride 2 → second 3×3 + 1×1 stride 2 of x.
PROJECTION_BLOCK = {"first": {"source": "x", "geometry": conv(2, 8, 8, 4, 3, 2, 1)},
                    "second": [{"source": "first", "geometry": conv(4, 4, 4, 4, 3, 1, 1)},
                               {"source": "x", "geometry": conv(2, 8, 8, 4, 1, 2, 0)}]}


def run_block(block, lanes, kind, steps=3, queue_depth=2, fork_depth=2, idle=0.1, backpressure=0.5,
              transactions=8_000, seed=None):
    if "verilator" not in available_simulators():
        pytest.skip("verilator is not installed")
    from sim.tb.graph import build
    config = {**block, "lanes": lanes, "kind": kind, "steps": steps, "leak_shift": 2, "weight_width": 8,
              "weight_style": "random", "weight_seed": 7, "queue_depth": queue_depth,
              "fork_depth": fork_depth}
    _, top = build(config)
    params = dict(config, transactions=transactions, idle=idle, backpressure=backpressure)
    return run_component(top, "residual_block", "sim.tb.graph", params, config, "verilator", seed,
                         testcase="block_matches_reference")


@pytest.mark.parametrize("block,lanes,kind", [
    (IDENTITY_BLOCK, 2, "ternary"),
    (PROJECTION_BLOCK, 1, "binary"),
])
def test_residual_block_smallest_queues(block, lanes, kind):
    assert run_block(block, lanes, kind).passed == ("block_matches_reference",)


@pytest.mark.slow
@pytest.mark.parametrize("block,lanes,kind,idle,backpressure", [
    (IDENTITY_BLOCK, 4, "binary", 0.0, 0.8),
    (PROJECTION_BLOCK, 2, "ternary", 0.5, 0.0),
    (PROJECTION_BLOCK, 4, "ternary", 0.0, 0.9),
])
def test_residual_block_sweep(block, lanes, kind, idle, backpressure):
    assert run_block(block, lanes, kind, idle=idle, backpressure=backpressure,
                     transactions=20_000).passed == ("block_matches_reference",)
