"""ReadoutLayer testbench: images of T random spike maps in (random idle), one result beat
per image out (random back-pressure); logits = Σ_t W ⋆ s^t + T·b and the class (smallest
index of the maximum) checked against gen.ir.golden's projection."""
import cocotb
import numpy as np

from hw.readout import ReadoutLayer
from sim.tb.reference import bits_signed, current_bound, make_geometry, make_weights, project
from sim.tb.spikes import DRAIN_CYCLES, random_spikes, send_step
from sim.tb.streams import Bench, payload_layout, unpack


def build(p):
    geometry = make_geometry(p["geometry"])
    weights = make_weights(geometry.weight_shape, p["weight_width"], p["weight_style"], p["weight_seed"])
    rng = np.random.default_rng(p["weight_seed"] + 7)
    bound = current_bound(weights, 1)
    bias = rng.integers(-(bound // 4) - 1, bound // 4 + 1, size=geometry.out_channels)
    current_width = bits_signed(-bound, bound)
    top = p["steps"] * (bound + int(np.abs(bias).max()))
    layer = ReadoutLayer(geometry, weights, bias, lanes=p["lanes"], weight_width=p["weight_width"],
                         steps=p["steps"], current_width=current_width, logit_width=bits_signed(-top, top),
                         queue_depth=p.get("queue_depth", 64))
    return geometry, weights, bias, layer


@cocotb.test()
async def readout_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, weights, bias, layer = build(p)
    in_layout = payload_layout(layer, "events_in")
    source, sink = bench.random_streams("events_in", "result")
    await bench.reset()
    rng = bench.rng
    expected = []
    transactions = 0
    while transactions < p["transactions"]:
        logits = p["steps"] * np.repeat(np.asarray(bias, dtype=np.int64), geometry.out_positions)
        for _ in range(p["steps"]):
            x = random_spikes(rng, geometry.in_size, False)
            if rng.random() < 0.1:   # ties between classes: all-zero input leaves T·b
                x[:] = 0
            transactions += send_step(source, in_layout, x, rng) + 1
            logits = logits + project(geometry, weights, x)
        expected.append({"logits": [int(v) for v in logits], "cls": int(np.argmax(logits))})
    await bench.run_until(lambda: len(sink.received) >= len(expected), 50 * transactions + 1000,
                          "all results")
    await bench.run_for(DRAIN_CYCLES)
    assert len(sink.received) == len(expected), f"{len(sink.received)} results, expected {len(expected)}"
    for i, (word, want) in enumerate(zip(sink.received, expected)):
        got = unpack(layer.result_layout, word)
        assert got == want, f"image {i}: got {got}, expected {want} (seed {bench.seed})"
    dut._log.info("%d images, %d transactions matched", len(expected), transactions)
