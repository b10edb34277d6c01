"""A whole network of dense engines, built by the registry's factories from a plan that asks
for the dense family everywhere (gen.plan families, gen.backend.emit.build_engine), chained map stream
to map stream: 8-pixel beats in, results out. Every image's logits and class checked against
gen.ir.golden.run; random idle input and result back-pressure."""
import cocotb
import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.ir import golden
from gen.boards import get_board
from gen.backend.emit import build_engine
from gen.engines import engine_named
from gen.ir import INPUT, Conv2d, Dense, Layer, Network, Projection
from gen.plan import make_plan
from sim.tb.dense_encoding import pixel_beats
from sim.tb.streams import Bench, unpack


def network(seed: int, steps: int) -> Network:
    """input (1, 8, 8) -> encoding conv (4, 8, 8) -> conv stride 2 (6, 4, 4) -> readout (3), with
    thresholds drawn around the typical current so that every layer fires sometimes."""
    rng = np.random.default_rng(seed)

    def lif(name, shape, projection, kind, scale):
        c = shape[0]
        return Layer(name, kind, shape, (projection,), rng.integers(-scale // 4, scale // 4 + 1, c), neuron="ternary",
                     theta_pos=rng.integers(scale // 2, scale + 1, c), theta_neg=-rng.integers(scale // 2, scale + 1, c),
                     leak_shift=2)
    enc = lif("enc", (4, 8, 8), Projection(INPUT, Conv2d(3, 1, 1), rng.integers(-7, 8, (4, 1, 3, 3))), "encoding", 2000)
    mid = lif("mid", (6, 4, 4), Projection("enc", Conv2d(3, 2, 1), rng.integers(-7, 8, (6, 4, 3, 3))), "spiking", 16)
    out = Layer("out", "readout", (3,), (Projection("mid", Dense(), rng.integers(-7, 8, (3, 96))),),
                rng.integers(-2, 3, 3))
    return Network("dense_chain", (1, 8, 8), steps, 4, (enc, mid, out))


class DenseChain(wiring.Component):
    """The plan's engines, each one's output stream into the next one's input stream."""

    def __init__(self, net: Network, lanes: dict):
        self.plan = make_plan(net, get_board("pynq-z2"), families={layer.name: "dense" for layer in net.layers},
                              lanes=lanes)
        self.engines = [(engine_named(lp.engine), build_engine(net, lp, 0)) for lp in self.plan.layers]
        first, last = self.engines[0], self.engines[-1]
        super().__init__({"pixels": In(getattr(first[1], first[0].input_stream).signature.flip()),
                          "result": Out(getattr(last[1], last[0].output_stream).signature)})

    def elaborate(self, platform):
        m = Module()
        for i, (_, component) in enumerate(self.engines):
            m.submodules[f"layer{i}"] = component
        (spec0, c0), (spec_n, c_n) = self.engines[0], self.engines[-1]
        wiring.connect(m, wiring.flipped(self.pixels), getattr(c0, spec0.input_stream))
        for (spec_a, a), (spec_b, b) in zip(self.engines, self.engines[1:]):
            wiring.connect(m, getattr(a, spec_a.output_stream), getattr(b, spec_b.input_stream))
        wiring.connect(m, getattr(c_n, spec_n.output_stream), wiring.flipped(self.result))
        return m


def build(p):
    net = network(p["net_seed"], p["steps"])
    return net, DenseChain(net, p["lanes"])


@cocotb.test()
async def dense_chain_matches_golden(dut):
    bench = Bench(dut)
    p = bench.params
    net, chain = build(p)
    encoding = chain.engines[0][1]
    source, sink = bench.random_streams("pixels", "result", default=0.3)
    await bench.reset()
    rng = np.random.default_rng(bench.seed)
    images = rng.integers(0, 256, size=(p["images"], 1, 8, 8), dtype=np.uint8)
    images[rng.random(images.shape) < 0.3] = 0
    for image in images:
        for word in pixel_beats(encoding, image.astype(np.int64)):
            source.send(word)
    want = golden.run(net, images, record=True)
    await bench.run_until(lambda: len(sink.received) >= len(images), 200_000, "every result")
    await bench.run_for(30)
    layout = chain.engines[-1][1].result_layout
    got = [unpack(layout, w) for w in sink.received]
    assert [g["logits"] for g in got] == want.logits.tolist(), f"logits differ (seed {bench.seed})"
    assert [g["cls"] for g in got] == want.classes.tolist()
    for name, spikes in want.spikes.items():       # a test of a network that never fires proves nothing
        assert 0 < np.count_nonzero(spikes) < spikes.size, f"layer {name} fires never or always"
