"""EncodingLayer testbench: random uint8 images (mostly zeros, extremes included) as pixel
streams with random idle cycles; each of the T steps' output events (a set) and its eos
are checked against gen.golden, image after image, under random back-pressure."""
import cocotb
import numpy as np

from hw.encoding import EncodingLayer
from sim.tb.layer import split_steps
from sim.tb.reference import layer_parameters, layer_widths, lif_layer, make_geometry, project
from sim.tb.streams import Bench, pack, unpack


def build(p):
    geometry = make_geometry(p["geometry"])
    weights, bias, theta_pos, theta_neg = layer_parameters(geometry, p, max_input=255)
    cw, mw = layer_widths(weights, bias, theta_pos, theta_neg, p["leak_shift"], p["steps"], max_input=255)
    layer = EncodingLayer(geometry, weights, bias, theta_pos, theta_neg, leak_shift=p["leak_shift"],
                          steps=p["steps"], kind=p["kind"], lanes=p["lanes"],
                          weight_width=p["weight_width"], current_width=cw, membrane_width=mw)
    return geometry, (weights, bias, theta_pos, theta_neg), layer


def random_image(rng, size):
    zeros = rng.choice([0.8, 0.5, 1.0, 0.0])
    return np.array([0 if rng.random() < zeros else rng.choice([255, 1, rng.randrange(256)])
                     for _ in range(size)], dtype=np.int64)


@cocotb.test()
async def encoding_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, (weights, bias, theta_pos, theta_neg), layer = build(p)
    in_layout = layer.pixels.payload.shape()
    out_layout = layer.events.payload.shape()
    source = bench.source("pixels", idle=p.get("idle", 0.3))
    sink = bench.sink("events", backpressure=p.get("backpressure", 0.3))
    await bench.reset()
    rng = bench.rng
    expected = []
    transactions = images = 0
    while transactions < p["transactions"]:
        x = random_image(rng, geometry.in_size)
        for i, v in enumerate(x):
            source.send(pack(in_layout, {"value": int(v), "last": int(i == len(x) - 1)}))
        current = project(geometry, weights, x)
        for s in lif_layer([current] * p["steps"], bias, theta_pos, theta_neg, geometry.out_positions,
                           p["leak_shift"], p["kind"]):
            expected.append(sorted((int(n), int(s[n] < 0)) for n in np.flatnonzero(s)))
        transactions += len(x) + p["steps"] * geometry.out_size
        images += 1
    eos_seen = 0

    def count_eos(b):
        nonlocal eos_seen
        while count_eos.done < len(sink.received):
            eos_seen += unpack(out_layout, sink.received[count_eos.done])["eos"]
            count_eos.done += 1
    count_eos.done = 0
    bench.hooks.append(count_eos)
    await bench.run_until(lambda: eos_seen >= len(expected), 50 * transactions + 1000, "all steps")
    for _ in range(50):
        await bench.step()
    got, tail = split_steps([unpack(out_layout, w) for w in sink.received])
    assert not tail, f"{len(tail)} events after the last eos"
    assert len(got) == len(expected), f"{len(got)} steps out, expected {len(expected)}"
    fired = 0
    for i, (g, e) in enumerate(zip(got, expected)):
        image, t = divmod(i, p["steps"])
        assert g == e, (f"image {image} step {t}: {len(g)} events, expected {len(e)}; "
                        f"first difference {sorted(set(g) ^ set(e))[:5]} (seed {bench.seed})")
        fired += len(e)
    assert fired > 0, "degenerate stimulus: nothing fired"
    dut._log.info("%d images, %d steps, %d output events, %d transactions matched",
                  images, len(expected), fired, transactions)
