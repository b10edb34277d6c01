"""Accumulator testbench: random spike maps (spike mode) or pixel maps (pixel mode), one
event per non-zero input in random order with random idle cycles; after each map the
currents are swept out (and cleared) and compared with Σ W ⋆ s."""
import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from hw.accumulator import Accumulator
from sim.tb.reference import lane_words_to_map, make_geometry, make_weights, project
from sim.tb.streams import Bench, latency, pack, to_signed, write_report


def build(p):
    geometry = make_geometry(p["geometry"])
    weights = make_weights(geometry.weight_shape, p["weight_width"], p["weight_style"], p["weight_seed"])
    acc = Accumulator(geometry, weights, lanes=p["lanes"], weight_width=p["weight_width"],
                      current_width=p["current_width"], mode=p["mode"])
    return geometry, weights, acc


def random_map(rng, size, mode, style):
    density = rng.choice([0.05, 0.2, 0.5, 1.0])
    active = np.array([rng.random() < density for _ in range(size)])
    if mode == "pixel":
        values = np.array([rng.choice([255, 1, rng.randrange(256)]) for _ in range(size)])
        return np.where(active, values, 0)
    if style == "max":   # all +1 on max weights: the currents reach their bound
        signs = np.ones(size, dtype=np.int64)
    else:
        signs = np.array([rng.choice([-1, 1]) for _ in range(size)])
    return np.where(active, signs, 0)


async def read_currents(dut, depth, lanes, width, clear=True):
    words = []
    for a in range(depth + 1):
        await FallingEdge(dut.clk)
        dut.sweep_en.value = int(a < depth)
        dut.sweep_clear.value = int(clear)
        dut.sweep_addr.value = a if a < depth else 0
        await ReadOnly()
        if a:
            raw = int(dut.sweep_data.value)
            words.append([to_signed((raw >> (j * width)) & ((1 << width) - 1), width) for j in range(lanes)])
    await FallingEdge(dut.clk)
    dut.sweep_en.value = 0
    return words


def event_word(acc, mode, addr, neg=0, value=255):
    """One input event: a spike's sign in spike mode, a pixel's value in pixel mode."""
    field = {"neg": neg} if mode == "spike" else {"value": value}
    return pack(acc.event_layout, {"addr": addr, **field})


async def start(dut, random_idle=False):
    """The bench, its params, what they build (geometry, weights, accumulator) and the event
    source (with random idle cycles as the params say, if random_idle), the sweep port held
    off, after reset."""
    bench = Bench(dut)
    p = bench.params
    built = build(p)
    dut.sweep_en.value = 0
    dut.sweep_clear.value = 0
    dut.sweep_addr.value = 0
    source = bench.source("events", idle=p.get("idle", 0.3) if random_idle else 0.0)
    await bench.reset()
    return bench, p, built, source


async def wait_idle(bench, source, limit):
    # A beat seen accepted in the ReadOnly phase enters on the next edge: step past it.
    await bench.run_until(lambda: not source.busy, limit, "the event source")
    await bench.step()
    await bench.run_until(lambda: int(bench.dut.idle.value), limit, "the accumulator to go idle")


@cocotb.test()
async def accumulator_matches_projection(dut):
    bench, p, (geometry, weights, acc), source = await start(dut, random_idle=True)
    rng = bench.rng
    sent = maps = 0
    while sent < p["events"]:
        x = random_map(rng, geometry.in_size, p["mode"], p["weight_style"])
        order = [int(i) for i in np.flatnonzero(x)]
        rng.shuffle(order)
        for i in order:
            source.send(event_word(acc, p["mode"], i, neg=int(x[i] < 0), value=int(x[i])))
        sent += len(order)
        await wait_idle(bench, source, 100 * (len(order) + 10) * geometry.out_channels)
        words = await read_currents(dut, acc.current_depth, acc.lanes, acc.current_width)
        got = lane_words_to_map(words, acc.lanes, geometry.out_positions)
        want = project(geometry, weights, x)
        bad = np.flatnonzero(got != want)
        assert not bad.size, (f"map {maps}: {bad.size} currents differ, first at {bad[0]}: "
                              f"got {got[bad[0]]}, expected {want[bad[0]]} (seed {bench.seed})")
        maps += 1
    bench.dut._log.info("%d events in %d maps matched", sent, maps)


@cocotb.test()
async def accumulator_throughput(dut):
    """Full maps with no idle cycles: synaptic ops per cycle, written to params['report']."""
    bench, p, (geometry, weights, acc), source = await start(dut)
    rng = bench.rng
    maps = p.get("maps", 2)
    for _ in range(maps):
        for i in range(geometry.in_size):
            source.send(event_word(acc, p["mode"], i, neg=rng.randrange(2)))
    taps = [int((project(geometry, np.ones(geometry.weight_shape, dtype=np.int64),
                         np.eye(geometry.in_size, dtype=np.int64)[i]) != 0).sum())
            for i in range(geometry.in_size)]
    ops = sum(taps) * maps
    events = geometry.in_size * maps
    await bench.run_until(lambda: source.sent > 0, 100)
    start_cycle = bench.cycle - 1
    await wait_idle(bench, source, 1000 * events)
    cycles = bench.cycle - start_cycle
    report = {"events": events, "synaptic_ops": ops, "cycles": cycles, "sops_per_cycle": ops / cycles}
    bench.dut._log.info("throughput %s", report)
    write_report(p["report"], report)


@cocotb.test()
async def accumulator_latency(dut):
    """Cycles from one event (middle of the map) entering to its last current write (idle)."""
    bench, p, (geometry, weights, acc), source = await start(dut)
    word = event_word(acc, p["mode"], geometry.in_size // 2)
    await bench.step()
    cycles = await latency(bench, source, word, lambda: int(dut.idle.value))
    write_report(p["report"], {"latency_cycles": cycles})
