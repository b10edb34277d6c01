"""EncodingLayer testbench: random uint8 images (mostly zeros, extremes included) as pixel
streams with random idle cycles; each of the T steps' output events (a set) and its eos
are checked against gen.ir.golden, image after image, under random back-pressure."""
import cocotb
import numpy as np

from hw.encoding import EncodingLayer
from sim.tb.reference import layer_parameters, layer_widths, lif_layer, make_geometry, project
from sim.tb.spikes import check_layer_steps, step_events
from sim.tb.streams import Bench, pack


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

    def send_image(rng, source, layout):
        x = random_image(rng, geometry.in_size)
        for i, v in enumerate(x):
            source.send(pack(layout, {"value": int(v), "last": int(i == len(x) - 1)}))
        # The layer encodes the same image at every step: T copies of one current.
        spikes = lif_layer([project(geometry, weights, x)] * p["steps"], bias, theta_pos, theta_neg,
                           geometry.out_positions, p["leak_shift"], p["kind"])
        return [step_events(s) for s in spikes], len(x) + p["steps"] * geometry.out_size

    await check_layer_steps(bench, layer, "pixels", send_image)
