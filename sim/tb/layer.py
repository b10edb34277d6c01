"""SpikingLayer testbench: images of T random spike maps in, events out under random
back-pressure; each step's output events (a set: order within a step is free) and its
single eos are checked against the SPEC §4 reference, image after image."""
import cocotb
import numpy as np

from hw.layer import SpikingLayer
from sim.tb.reference import layer_parameters, layer_widths, lif_layer, make_geometry, project
from sim.tb.streams import Bench, pack, unpack


def build(p):
    geometry = make_geometry(p["geometry"])
    weights, bias, theta_pos, theta_neg = layer_parameters(geometry, p)
    cw, mw = layer_widths(weights, bias, theta_pos, theta_neg, p["leak_shift"], p["steps"])
    layer = SpikingLayer(geometry, weights, bias, theta_pos, theta_neg, leak_shift=p["leak_shift"],
                         steps=p["steps"], kind=p["kind"], lanes=p["lanes"],
                         weight_width=p["weight_width"], current_width=cw, membrane_width=mw,
                         queue_depth=p.get("queue_depth", 64))
    return geometry, (weights, bias, theta_pos, theta_neg), layer


def random_spikes(rng, size, binary_input):
    density = rng.choice([0.0, 0.1, 0.3, 0.6, 1.0])
    signs = [1 if binary_input else rng.choice([-1, 1]) for _ in range(size)]
    return np.array([s if rng.random() < density else 0 for s in signs], dtype=np.int64)


def split_steps(events):
    """Output events -> per step sorted (addr, neg) lists, split at eos."""
    steps, current = [], []
    for ev in events:
        if ev["eos"]:
            steps.append(sorted(current))
            current = []
        else:
            current.append((ev["addr"], ev["neg"]))
    return steps, current


@cocotb.test()
async def layer_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, (weights, bias, theta_pos, theta_neg), layer = build(p)
    in_layout = layer.events_in.payload.shape()
    out_layout = layer.events.payload.shape()
    source = bench.source("events_in", idle=p.get("idle", 0.3))
    sink = bench.sink("events", backpressure=p.get("backpressure", 0.3))
    await bench.reset()
    rng = bench.rng
    expected = []
    transactions = images = 0
    while transactions < p["transactions"]:
        maps = [random_spikes(rng, geometry.in_size, p.get("binary_input", False)) for _ in range(p["steps"])]
        currents = [project(geometry, weights, x) for x in maps]
        spikes = lif_layer(currents, bias, theta_pos, theta_neg, geometry.out_positions,
                           p["leak_shift"], p["kind"])
        for x, s in zip(maps, spikes):
            order = [int(i) for i in np.flatnonzero(x)]
            rng.shuffle(order)
            for i in order:
                source.send(pack(in_layout, {"addr": i, "neg": int(x[i] < 0)}))
            source.send(pack(in_layout, {"eos": 1}))
            expected.append(sorted((int(n), int(s[n] < 0)) for n in np.flatnonzero(s)))
            # Input events and neuron updates both count as transactions.
            transactions += len(order) + geometry.out_size
        images += 1
    eos_bit = 1 << dict(iter(out_layout))["eos"].offset   # cheap: no unpacking per cycle
    await bench.run_until(lambda: sum(1 for w in sink.received if w & eos_bit) >= len(expected)
                          if bench.cycle % 64 == 0 else False, 50 * transactions + 1000, "all steps")
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


@cocotb.test()
async def layer_latency(dut):
    """Cycles from a step's eos entering to the layer's eos leaving, for a step with no input
    events (the LIF sweep of every neuron) and for a step where every input neuron fires."""
    from sim.tb.streams import write_report
    bench = Bench(dut)
    p = bench.params
    geometry, _, layer = build(p)
    in_layout = layer.events_in.payload.shape()
    out_layout = layer.events.payload.shape()
    source = bench.source("events_in")
    sink = bench.sink("events")
    await bench.reset()
    report = {}
    for name, count in (("empty_step_cycles", 0), ("full_step_cycles", geometry.in_size)):
        for i in range(count):
            source.send(pack(in_layout, {"addr": i, "neg": 0}))
        source.send(pack(in_layout, {"eos": 1}))
        start = bench.cycle
        before = len(sink.received)
        await bench.run_until(lambda: any(unpack(out_layout, w)["eos"] for w in sink.received[before:]),
                              100_000, "the eos")
        report[name] = bench.cycle - start
    report["out_events"] = len(sink.received)
    write_report(p["report"], report)
