"""Multi-projection SpikingLayer testbench: per step, an independent random spike map on
each projection's input (each source with its own idle cycles, events of later steps
queued ahead), events out under random back-pressure; each step's events are checked
against SPEC §4 with the currents of every projection summed (gen.ir.golden)."""
import cocotb

from hw.layer import SpikingLayer
from sim.tb.projections import multi_layer_args, summed_currents
from sim.tb.reference import lif_layer
from sim.tb.spikes import check_multi_input_steps, random_spikes, send_step, step_events
from sim.tb.streams import Bench


def build(p):
    args = multi_layer_args(p["projections"], p)
    layer = SpikingLayer(None, None, args.pop("bias"), args.pop("theta_pos"), args.pop("theta_neg"),
                         queue_depth=p.get("queue_depth", 64), **args)
    return layer


@cocotb.test()
async def multi_layer_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    layer = build(p)
    projections = layer.projections
    ports = [port for _, port, _ in layer.in_ports]
    positions = layer.sweep.positions

    def send_image(rng, inputs):
        maps = [[random_spikes(rng, pr.geometry.in_size, p.get("binary_input", False)) for pr in projections]
                for _ in range(p["steps"])]
        currents = [summed_currents(projections, step) for step in maps]
        spikes = lif_layer(currents, layer.sweep.bias, layer.sweep.theta_pos, layer.sweep.theta_neg,
                           positions, p["leak_shift"], p["kind"])
        transactions = 0
        for step in maps:
            for port, x in zip(ports, step):
                transactions += send_step(*inputs[port], x, rng)
            transactions += layer.sweep.depth * layer.sweep.lanes
        return [step_events(s) for s in spikes], transactions

    await check_multi_input_steps(bench, layer, ports, send_image)
