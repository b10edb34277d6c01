"""Accumulator: parameter checks and the cocotb testbench over conv borders, strides,
kernels 1/3/5, dense, several P, spike and pixel modes, weights at their extremes."""
import numpy as np
import pytest

from hw.accumulator import Accumulator, magic_divider
from hw.geometry import ConvGeometry, DenseGeometry
from sim.tb.harness import run_component
from sim.tb.reference import bits_signed, current_bound, make_geometry, make_weights
from sim.toolchain import available_simulators


def accumulator_config(geometry, lanes, mode="spike", weight_width=8, weight_style="random", weight_seed=1):
    g = make_geometry(geometry)
    weights = make_weights(g.weight_shape, weight_width, weight_style, weight_seed)
    bound = current_bound(weights, 255 if mode == "pixel" else 1)
    return {"geometry": geometry, "lanes": lanes, "mode": mode, "weight_width": weight_width,
            "weight_style": weight_style, "weight_seed": weight_seed,
            "current_width": bits_signed(-bound, bound)}


def run_accumulator(config, events=10_000, simulator="verilator", seed=None,
                    testcase="accumulator_matches_projection", **extra):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed")
    from sim.tb.accumulator import build
    _, _, acc = build(config)
    return run_component(acc, "accumulator", "sim.tb.accumulator", dict(config, events=events, **extra),
                         config, simulator, seed, testcase)


CONV_PAD_S2 = {"kind": "conv", "in_channels": 2, "in_height": 7, "in_width": 6, "out_channels": 4,
               "kernel": 3, "stride": 2, "padding": 1}
CONV_K5 = {"kind": "conv", "in_channels": 1, "in_height": 6, "in_width": 6, "out_channels": 6,
           "kernel": 5, "stride": 1, "padding": 2}
DENSE = {"kind": "dense", "in_features": 40, "out_features": 6}


@pytest.mark.parametrize("geometry,lanes,mode,style", [
    (CONV_PAD_S2, 2, "spike", "random"),
    (CONV_K5, 3, "spike", "max"),
    (DENSE, 6, "spike", "extreme"),
    (CONV_PAD_S2, 4, "pixel", "extreme"),
])
def test_accumulator_verilator(geometry, lanes, mode, style):
    config = accumulator_config(geometry, lanes, mode, weight_style=style)
    assert run_accumulator(config).passed == ("accumulator_matches_projection",)


def test_accumulator_icarus():
    config = accumulator_config(DENSE, 2, "spike")
    assert run_accumulator(config, events=1_500, simulator="icarus").passed == ("accumulator_matches_projection",)


@pytest.mark.slow
@pytest.mark.parametrize("geometry,lanes,mode,style,width", [
    ({"kind": "conv", "in_channels": 3, "in_height": 5, "in_width": 5, "out_channels": 4,
      "kernel": 1, "stride": 1, "padding": 0}, 4, "spike", "extreme", 8),
    ({"kind": "conv", "in_channels": 2, "in_height": 9, "in_width": 8, "out_channels": 2,
      "kernel": 5, "stride": 2, "padding": 2}, 1, "spike", "random", 4),
    ({"kind": "conv", "in_channels": 1, "in_height": 8, "in_width": 8, "out_channels": 8,
      "kernel": 3, "stride": 1, "padding": 0}, 8, "pixel", "max", 8),
    ({"kind": "conv", "in_channels": 2, "in_height": 8, "in_width": 7, "out_channels": 4,
      "kernel": 3, "stride": 2, "padding": 0}, 2, "spike", "extreme", 2),
    ({"kind": "dense", "in_features": 30, "out_features": 10}, 1, "spike", "max", 8),
    ({"kind": "dense", "in_features": 12, "out_features": 8}, 4, "pixel", "extreme", 6),
    (DENSE, 3, "spike", "random", 3),
])
def test_accumulator_sweep(geometry, lanes, mode, style, width):
    config = accumulator_config(geometry, lanes, mode, weight_width=width, weight_style=style)
    assert run_accumulator(config, events=20_000).passed == ("accumulator_matches_projection",)


def test_magic_divider_is_exact():
    for divisor in (1, 3, 7, 28, 784, 100):
        mult, shift = magic_divider(divisor, 5000)
        a = np.arange(5000, dtype=object)
        assert all((a * mult) >> shift == a // divisor)


def geometry_weights():
    g = ConvGeometry(2, 5, 5, 4, 3, 1, 1)
    return g, np.zeros(g.weight_shape, dtype=np.int64)


@pytest.mark.parametrize("kwargs,message", [
    ({"lanes": 3}, r"lanes must be one of \[1, 2, 4\] \(divisors of 4 output channels\), not 3"),
    ({"weight_width": 1}, "weight_width must be an integer >= 2, not 1"),
    ({"current_width": 0}, "current_width must be an integer >= 2, not 0"),
    ({"mode": "analog"}, "mode must be one of spike, pixel, not 'analog'"),
    ({"weights": np.zeros((4, 2, 3))}, r"weights must have shape \(4, 2, 3, 3\), not \(4, 2, 3\)"),
    ({"weights": np.full((4, 2, 3, 3), 200)}, r"weights must lie in \[-128, 127\] for weight_width 8, not \[200, 200\]"),
    ({"weights": np.zeros((4, 2, 3, 3)) + 0.5}, "weights must be integers"),
])
def test_accumulator_rejects_bad_parameters(kwargs, message):
    g, w = geometry_weights()
    args = dict(weights=w, lanes=2, weight_width=8, current_width=16, mode="spike")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Accumulator(g, **args)


@pytest.mark.parametrize("make,message", [
    (lambda: ConvGeometry(0, 5, 5, 4, 3), "in_channels must be a positive integer, not 0"),
    (lambda: ConvGeometry(1, 5, 5, 4, 3, padding=3), r"padding must be an integer in \[0, kernel\), not 3"),
    (lambda: ConvGeometry(1, 2, 2, 4, 5, padding=1), "kernel must fit the padded input"),
    (lambda: DenseGeometry(4, -1), "out_features must be a positive integer, not -1"),
])
def test_geometry_rejects_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- several projections into one current memory (hw.multi_accumulator) -----------------------

def multi_accumulator():
    from hw.multi_accumulator import MultiAccumulator
    from hw.projection import IdentityGeometry, Projection
    rng = np.random.default_rng(0)
    projections = [
        Projection("main", ConvGeometry(4, 6, 6, 8, 3, 1, 1), rng.integers(-9, 9, size=(8, 4, 3, 3))),
        Projection("skip", IdentityGeometry(8, 6, 6), rng.integers(-9, 9, size=8)),
        Projection("down", ConvGeometry(2, 12, 12, 8, 1, 2, 0), rng.integers(-9, 9, size=(8, 2, 1, 1)))]
    return MultiAccumulator(projections, lanes=2, weight_width=8, current_width=14)


def busy_cycles(acc, proj, addrs) -> int:
    """Cycles from the first event offered (back to back, always valid) until idle."""
    from amaranth.sim import Simulator
    result = {}

    async def bench(ctx):
        await ctx.tick()
        sent = cycles = 0
        while sent < len(addrs):
            ctx.set(acc.events.valid, 1)
            ctx.set(acc.events.payload.addr, addrs[sent])
            ctx.set(acc.events.payload.proj, proj)
            sent += ctx.get(acc.events.ready)
            await ctx.tick()
            cycles += 1
        ctx.set(acc.events.valid, 0)
        while not ctx.get(acc.idle):
            await ctx.tick()
            cycles += 1
        result["cycles"] = cycles
    sim = Simulator(acc)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return result["cycles"]


@pytest.mark.parametrize("proj,addrs,per_event", [
    (1, list(range(30)), 1),                                                     # identity: one op
    (2, [c * 144 + y * 12 + x for c in range(2) for y in (0, 4) for x in range(0, 12, 2)], 4),  # 1×1 s2, on grid: O/P
    (2, [c * 144 + y * 12 + x for c in range(2) for y in (1, 5) for x in range(0, 12, 2)], 1),  # off grid: no tap
    (0, [c * 36 + y * 6 + x for c in range(2) for y in (1, 4) for x in range(1, 5)], 36),        # 3×3 inside: 9·O/P
])
def test_multi_accumulator_cycles_per_event(proj, addrs, per_event):
    """The cost model of docs/hardware.md: cycles per event of each projection kind at full
    rate (the difference between sending the events twice and once: no pipeline fill)."""
    acc = multi_accumulator()
    assert busy_cycles(acc, proj, addrs * 2) - busy_cycles(acc, proj, addrs) == per_event * len(addrs)
