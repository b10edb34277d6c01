"""DenseEncodingLayer testbench: uint8 images in as 8-pixel beats with random idle input,
the spike maps of T steps out under random back-pressure, every beat checked against
gen.ir.golden (the conv of the image at every step, SPEC §4); and, with neither, the period
of back-to-back images against the conv schedule."""
import cocotb
import numpy as np

from gen.ir import golden
from hw.dense_encoding import DenseEncodingLayer, encoding_period_cycles
from hw.ternary_stream import map_beats, word_beat
from sim.tb.reference import ir_op, make_geometry
from sim.tb.streams import Bench, pack, payload_layout, write_report


def build(p):
    geometry = make_geometry(p["geometry"])
    rng = np.random.default_rng(p["weight_seed"])
    O = geometry.out_channels
    weights = rng.integers(-(1 << (p["weight_width"] - 1)), 1 << (p["weight_width"] - 1), size=geometry.weight_shape)
    w = weights.reshape(O, -1)
    low, high = int(np.minimum(w, 0).sum(1).min()) * 255, int(np.maximum(w, 0).sum(1).max()) * 255
    scale = max(1, (high - low) // 8)
    bias = rng.integers(-scale // 4, scale // 4 + 1, size=O)
    theta_pos = rng.integers(1, scale + 1, size=O)
    theta_neg = -rng.integers(1, scale + 1, size=O) if p["kind"] == "ternary" else -theta_pos
    current_width = max(abs(low), high).bit_length() + 2
    k, T = p["leak_shift"], p["steps"]
    r = ((max(abs(low), high) + scale) << (k * (T - 1) + 1)) + (scale << (k * (T - 1)))
    layer = DenseEncodingLayer(geometry, weights, bias, theta_pos, theta_neg, leak_shift=k, steps=T, kind=p["kind"],
                               lanes=p["lanes"], weight_width=p["weight_width"], current_width=current_width,
                               membrane_width=r.bit_length() + 2)
    return geometry, (weights, bias, theta_pos, theta_neg), layer


def pixel_beats(layer, image):
    layout = payload_layout(layer, "pixels")
    flat = [int(v) for v in image.reshape(-1)]
    return [pack(layout, {"pixels": flat[i:i + 8], "last": int(i + 8 >= len(flat))}) for i in range(0, len(flat), 8)]


def expected_beats(geometry, parameters, p, image):
    weights, bias, theta_pos, theta_neg = parameters
    current = golden.project(ir_op(geometry), weights, image[None].astype(np.int64))
    current += np.asarray(bias)[None, :, None, None]
    r = np.zeros_like(current)
    maps = []
    for t in range(p["steps"]):
        s, r = golden.lif_step(r, current, t, np.asarray(theta_pos), np.asarray(theta_neg), p["leak_shift"],
                               p["kind"])
        maps.append(s[0])
    return map_beats(np.array(maps))


def random_image(rng, geometry):
    g = geometry
    return np.array([rng.randrange(256) for _ in range(g.in_size)]).reshape(g.in_channels, g.in_height, g.in_width)


@cocotb.test()
async def dense_encoding_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, parameters, layer = build(p)
    source, sink = bench.random_streams("pixels", "maps")
    await bench.reset()
    expected = []
    for _ in range(p["images"]):
        image = random_image(bench.rng, geometry)
        for word in pixel_beats(layer, image):
            source.send(word)
        expected += expected_beats(geometry, parameters, p, image)
    await bench.run_until(lambda: len(sink.received) >= len(expected), 200 * len(expected) + 2000, "every beat")
    await bench.run_for(30)
    assert len(sink.received) == len(expected)
    O = geometry.out_channels
    for i, (got, want) in enumerate(zip(sink.received, expected)):
        assert got == want, f"beat {i}: got {word_beat(got, O)}, expected {word_beat(want, O)} (seed {bench.seed})"
    fired = sum(sum(s != 0 for s in word_beat(w, O)[0]) for w in expected)
    assert 0 < fired < len(expected) * O, f"degenerate stimulus: {fired} spikes"


@cocotb.test()
async def dense_encoding_cycles(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, parameters, layer = build(p)
    source, sink = bench.source("pixels"), bench.sink("maps")
    await bench.reset()
    for _ in range(4):
        for word in pixel_beats(layer, random_image(bench.rng, geometry)):
            source.send(word)
    per_image = p["steps"] * geometry.out_positions
    ends = []

    def watch(b):
        if len(sink.received) == per_image * (len(ends) + 1):
            ends.append(b.cycle)
    bench.hooks.append(watch)
    await bench.run_until(lambda: len(ends) == 4, 100_000, "four images")
    periods = [b - a for a, b in zip(ends, ends[1:])]
    model = encoding_period_cycles(geometry, p["lanes"], p["steps"])
    write_report(p["report"], {"periods": periods, "model_cycles": model})
    assert periods[1:] == [model] * 2, f"periods {periods}, the model says {model}"
