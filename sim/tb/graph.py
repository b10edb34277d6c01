"""A residual block as hardware, for the fork/join testbench: one input stream forked into
a conv engine and straight into the shortcut queue of a two-projection engine, whose main
queue the conv engine feeds (docs/hardware.md, "Graph-shaped hardware"):

    events_in ──► StreamFork ──out0──► first (SpikingLayer, 3×3 conv) ──► second.events_in
                             └─out1─────────────────────────────────────► second.events_in1
    second (SpikingLayer: main 3×3 conv + identity or 1×1 stride-2 shortcut) ──► events

Every queue and the fork at their smallest depth, random idle input and random
back-pressure on the output: a deadlock shows as a timeout, a wrong sum as a mismatch
against gen.ir.golden on both layers in a chain."""
import cocotb
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.event import event_layout, event_signature
from hw.fork import StreamFork
from hw.layer import SpikingLayer
from sim.tb.projections import multi_layer_args, project_any
from sim.tb.reference import lif_layer
from sim.tb.spikes import check_multi_input_steps, random_spikes, send_step, step_events
from sim.tb.streams import Bench


class ResidualBlock(wiring.Component):
    """events_in ─► fork ─► first ─► second (main); fork ─► second (shortcut) ─► events."""

    def __init__(self, first: SpikingLayer, second: SpikingLayer, fork_depth: int = 2):
        self.first, self.second = first, second
        self.fork_depth = fork_depth
        self.in_width = first.in_addr_width
        super().__init__({"events_in": In(event_signature(self.in_width)),
                          "events": Out(event_signature(second.out_addr_width))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fork = fork = StreamFork(event_layout(self.in_width), 2, self.fork_depth)
        m.submodules.first = first = self.first
        m.submodules.second = second = self.second
        wiring.connect(m, wiring.flipped(self.events_in), fork.w)
        wiring.connect(m, fork.out0, first.events_in)
        wiring.connect(m, first.events, second.events_in)
        wiring.connect(m, fork.out1, second.events_in1)
        wiring.connect(m, second.events, wiring.flipped(self.events))
        return m


def build(p):
    """((engine, its projections) for first and second, the block) from p's `first` (one
    projection spec, source "x") and `second` (main spec from "first", shortcut from "x")."""
    engines = []
    for offset, specs in ((0, [p["first"]]), (10, p["second"])):
        args = multi_layer_args(specs, p, seed_offset=offset)
        projections = args["projections"]
        engine = SpikingLayer(None, None, args.pop("bias"), args.pop("theta_pos"), args.pop("theta_neg"),
                              queue_depth=p["queue_depth"], **args)
        engines.append((engine, projections))
    return engines, ResidualBlock(engines[0][0], engines[1][0], p["fork_depth"])


def reference(layer, projections, maps_per_step, p):
    """Spikes of one engine over an image's steps: maps_per_step[t][i] feeds projection i."""
    currents = [sum(project_any(pr.geometry, pr.weights, x) for pr, x in zip(projections, maps))
                for maps in maps_per_step]
    return lif_layer(currents, layer.sweep.bias, layer.sweep.theta_pos, layer.sweep.theta_neg,
                     layer.sweep.positions, p["leak_shift"], p["kind"])


@cocotb.test()
async def block_matches_reference(dut):
    bench = Bench(dut)
    p = bench.params
    ((first, first_proj), (second, second_proj)), block = build(p)
    size = first_proj[0].geometry.in_size

    def send_image(rng, inputs):
        xs = [random_spikes(rng, size, p.get("binary_input", False)) for _ in range(p["steps"])]
        s1 = reference(first, first_proj, [[x] for x in xs], p)
        s2 = reference(second, second_proj, [[a, x] for a, x in zip(s1, xs)], p)
        transactions = sum(send_step(*inputs["events_in"], x, rng) for x in xs)
        transactions += p["steps"] * (first.geometry.out_size + second.sweep.depth * second.sweep.lanes)
        transactions += sum(int((s != 0).sum()) for s in s1)
        return [step_events(s) for s in s2], transactions

    # The case the deadlock argument is about: the shortcut input held (it has delivered
    # the step's eos, the main input has not) while the fork is stalled (input not ready).
    held = {"cycles": 0}

    def watch_hold(b):
        if int(dut.second.join.done.value) == 0b10 and not int(dut.fork.w__ready.value):
            held["cycles"] += 1
    bench.hooks.append(watch_hold)
    await check_multi_input_steps(bench, block, ["events_in"], send_image)
    bench.dut._log.info("shortcut held with the fork stalled in %d cycles", held["cycles"])
    assert held["cycles"] > 0, "the stimulus never held the shortcut while the fork was stalled"
