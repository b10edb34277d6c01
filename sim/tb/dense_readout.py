"""DenseReadout testbench: images of T random ternary (or binary) maps in as dense beats,
random idle input and result back-pressure; every result (logits and class) checked
against gen.ir.golden (Σ_t W·s^t + T·b, smallest index of the max); and, with neither, the
cycles per image back to back against hw.dense_readout.readout_cycles."""
import cocotb
import numpy as np

from gen.ir import golden
from hw.dense_readout import DenseReadout, readout_cycles
from hw.geometry import DenseGeometry
from hw.ternary_stream import map_beats
from sim.tb.reference import ir_op, make_weights
from sim.tb.spikes import random_spikes
from sim.tb.streams import Bench, unpack, write_report


def build(p):
    C, H, W, O = p["channels"], p["height"], p["width"], p["classes"]
    geometry = DenseGeometry(C * H * W, O)
    weights = make_weights(geometry.weight_shape, p["weight_width"], p["weight_style"], p["weight_seed"])
    bias = np.random.default_rng(p["weight_seed"] + 1).integers(-20, 21, size=O)
    bound = int(np.abs(weights).sum(axis=1).max())
    current_width = bound.bit_length() + 1
    logit_width = (p["steps"] * (bound + 20)).bit_length() + 1
    readout = DenseReadout(geometry, weights, bias, channels=C, lanes=p["lanes"], weight_width=p["weight_width"],
                           steps=p["steps"], current_width=current_width, logit_width=logit_width)
    return geometry, weights, bias, readout


def random_image(rng, p):
    size = p["channels"] * p["height"] * p["width"]
    return np.array([random_spikes(rng, size, p.get("binary_input", False)) for _ in range(p["steps"])])


def expected_result(geometry, weights, bias, image):
    logits = sum(golden.project(ir_op(geometry), weights, x[None])[0] for x in image) + len(image) * bias
    return [int(v) for v in logits], int(np.argmax(logits))


def shaped(p, image):
    return image.reshape(p["steps"], p["channels"], p["height"], p["width"])


@cocotb.test()
async def dense_readout_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, weights, bias, readout = build(p)
    source, sink = bench.random_streams("maps_in", "result")
    await bench.reset()
    expected = []
    for _ in range(p["images"]):
        image = random_image(bench.rng, p)
        for word in map_beats(shaped(p, image)):
            source.send(word)
        expected.append(expected_result(geometry, weights, bias, image))
    await bench.run_until(lambda: len(sink.received) >= len(expected), 100_000, "every result")
    await bench.run_for(30)
    got = [unpack(readout.result_layout, w) for w in sink.received]
    assert [(r["logits"], r["cls"]) for r in got] == expected, f"results differ (seed {bench.seed})"


@cocotb.test()
async def dense_readout_cycles(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, weights, bias, readout = build(p)
    source, sink = bench.source("maps_in"), bench.sink("result")
    await bench.reset()
    for _ in range(3):
        for word in map_beats(shaped(p, random_image(bench.rng, p))):
            source.send(word)
    taken = []

    def watch(b):
        if len(sink.received) > len(taken):
            taken.append(b.cycle)
    bench.hooks.append(watch)
    await bench.run_until(lambda: len(sink.received) == 3, 100_000, "three results")
    periods = [b - a for a, b in zip(taken, taken[1:])]
    model = readout_cycles(p["channels"], p["height"] * p["width"], p["classes"], p["lanes"], p["steps"])
    write_report(p["report"], {"periods": periods, "model_cycles": model})
    assert periods == [model, model], f"periods {periods}, the model says {model}"
