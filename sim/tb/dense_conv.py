"""DenseConvLayer testbench: images of T random ternary (or binary) spike maps in as dense
map beats, with random idle input and random output back-pressure; every output beat
(the O channels of one position, its eos/eoi marks) checked against gen.ir.golden (SPEC §4)
image after image; and, with neither, the cycles of back-to-back images against
hw.dense_conv.schedule_cycles."""
import cocotb
import numpy as np

from hw.dense_conv import DenseConvLayer, schedule_cycles
from hw.ternary_stream import map_beats, word_beat
from sim.tb.reference import layer_parameters, layer_widths, lif_layer, make_geometry, project
from sim.tb.spikes import random_spikes
from sim.tb.streams import Bench, write_report


def build(p):
    geometry = make_geometry(p["geometry"])
    weights, bias, theta_pos, theta_neg = layer_parameters(geometry, p)
    cw, mw = layer_widths(weights, bias, theta_pos, theta_neg, p["leak_shift"], p["steps"])
    layer = DenseConvLayer(geometry, weights, bias, theta_pos, theta_neg, leak_shift=p["leak_shift"],
                           steps=p["steps"], kind=p["kind"], lanes=p["lanes"], weight_width=p["weight_width"],
                           current_width=cw, membrane_width=mw)
    return geometry, (weights, bias, theta_pos, theta_neg), layer


def random_image(rng, geometry, p):
    """[T, C, H, W] input spikes and the [T, O, H_out, W_out] spikes SPEC §4 gives for them."""
    g = geometry
    maps = [random_spikes(rng, g.in_size, p.get("binary_input", False)) for _ in range(p["steps"])]
    return maps


def expected_image(geometry, parameters, p, maps):
    g = geometry
    weights, bias, theta_pos, theta_neg = parameters
    spikes = lif_layer([project(g, weights, x) for x in maps], bias, theta_pos, theta_neg,
                       g.out_positions, p["leak_shift"], p["kind"])
    return np.array(spikes).reshape(p["steps"], g.out_channels, g.out_height, g.out_width)


def shaped(geometry, maps):
    g = geometry
    return np.array(maps).reshape(len(maps), g.in_channels, g.in_height, g.in_width)


@cocotb.test()
async def dense_conv_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, parameters, layer = build(p)
    source, sink = bench.random_streams("maps_in", "maps")
    await bench.reset()
    expected = []
    for _ in range(p["images"]):
        maps = random_image(bench.rng, geometry, p)
        for word in map_beats(shaped(geometry, maps)):
            source.send(word)
        expected += map_beats(expected_image(geometry, parameters, p, maps))
    await bench.run_until(lambda: len(sink.received) >= len(expected), 200 * len(expected) + 2000,
                          "every output beat")
    await bench.run_for(50)     # nothing more may come out
    assert len(sink.received) == len(expected), f"{len(sink.received)} beats, expected {len(expected)}"
    O = geometry.out_channels
    fired = 0
    for i, (got, want) in enumerate(zip(sink.received, expected)):
        assert got == want, (f"beat {i} (image {i // (len(expected) // p['images'])}): got {word_beat(got, O)}, "
                             f"expected {word_beat(want, O)} (seed {bench.seed})")
        fired += sum(s != 0 for s in word_beat(got, O)[0])
    assert 0 < fired < len(expected) * O, f"degenerate stimulus: {fired} spikes"


@cocotb.test()
async def dense_conv_cycles(dut):
    """Images back to back at full rate, no back-pressure: cycles from the first input beat
    accepted to the last output beat taken, against the schedule model."""
    bench = Bench(dut)
    p = bench.params
    geometry, parameters, layer = build(p)
    source, sink = bench.source("maps_in"), bench.sink("maps")
    await bench.reset()
    images = p["cycle_images"]
    total = 0
    for _ in range(images):
        for word in map_beats(shaped(geometry, random_image(bench.rng, geometry, p))):
            source.send(word)
        total += p["steps"] * geometry.out_positions
    first = None

    def watch(b):
        nonlocal first
        if first is None and source.sent:
            first = b.cycle
    bench.hooks.append(watch)
    await bench.run_until(lambda: len(sink.received) == total, 1000 * total + 2000, "every output beat")
    measured = bench.cycle - first
    model = schedule_cycles(geometry, p["lanes"], steps=p["steps"], images=images)
    single = schedule_cycles(geometry, p["lanes"], steps=p["steps"], images=1)
    write_report(p["report"], {"measured_cycles": measured, "model_cycles": model, "images": images,
                               "period_cycles": model - single})
    assert measured == model, f"measured {measured} cycles for {images} images, the model says {model}"
