"""SpikingLayer testbench: images of T random spike maps in, events out under random
back-pressure; each step's output events (a set: order within a step is free) and its
single eos are checked against the SPEC §4 reference, image after image."""
import cocotb

from hw.layer import SpikingLayer
from sim.tb.reference import layer_parameters, layer_widths, lif_layer, make_geometry, project
from sim.tb.spikes import check_layer_steps, random_spikes, send_step, step_events
from sim.tb.streams import Bench, pack, payload_layout, unpack, write_report


def build(p):
    geometry = make_geometry(p["geometry"])
    weights, bias, theta_pos, theta_neg = layer_parameters(geometry, p)
    cw, mw = layer_widths(weights, bias, theta_pos, theta_neg, p["leak_shift"], p["steps"])
    layer = SpikingLayer(geometry, weights, bias, theta_pos, theta_neg, leak_shift=p["leak_shift"],
                         steps=p["steps"], kind=p["kind"], lanes=p["lanes"],
                         weight_width=p["weight_width"], current_width=cw, membrane_width=mw,
                         queue_depth=p.get("queue_depth", 64))
    return geometry, (weights, bias, theta_pos, theta_neg), layer


@cocotb.test()
async def layer_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, (weights, bias, theta_pos, theta_neg), layer = build(p)

    def send_image(rng, source, layout):
        maps = [random_spikes(rng, geometry.in_size, p.get("binary_input", False)) for _ in range(p["steps"])]
        spikes = lif_layer([project(geometry, weights, x) for x in maps], bias, theta_pos, theta_neg,
                           geometry.out_positions, p["leak_shift"], p["kind"])
        # Input events and neuron updates both count as transactions.
        transactions = sum(send_step(source, layout, x, rng) + geometry.out_size for x in maps)
        return [step_events(s) for s in spikes], transactions

    await check_layer_steps(bench, layer, "events_in", send_image)


@cocotb.test()
async def layer_latency(dut):
    """Cycles from a step's eos entering to the layer's eos leaving, for a step with no input
    events (the LIF sweep of every neuron) and for a step where every input neuron fires."""
    bench = Bench(dut)
    p = bench.params
    geometry, _, layer = build(p)
    in_layout, out_layout = payload_layout(layer, "events_in"), payload_layout(layer, "events")
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
