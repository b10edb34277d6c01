"""EventQueue testbench: random events in with random idle cycles, random back-pressure
out; the scoreboard checks order, content, binary polarity and the level count."""
import cocotb

from hw.event import event_layout
from sim.tb.streams import Bench, latency, pack, unpack, write_report


@cocotb.test()
async def queue_passes_every_event_once_in_order(dut):
    bench = Bench(dut)
    p = bench.params
    layout = event_layout(p["addr_width"])
    source, sink = bench.random_streams("w", "r")
    await bench.reset()
    rng = bench.rng
    expected = []
    for _ in range(p["events"]):
        eos = rng.random() < 0.05
        ev = {"addr": 0 if eos else rng.randrange(1 << p["addr_width"]),
              "neg": 0 if eos else rng.randrange(2), "eos": int(eos)}
        if rng.random() < 0.02:  # the extremes of the address range
            ev["addr"] = rng.choice([0, (1 << p["addr_width"]) - 1])
        source.send(pack(layout, ev))
        expected.append(dict(ev, neg=0 if p["binary"] else ev["neg"]))
    # Phases of pure filling then pure draining exercise full and empty.
    max_level = 0

    def watch_level(b):
        nonlocal max_level
        level = int(dut.level.value)
        assert level <= p["depth"] + 1, level
        max_level = max(max_level, level)
    bench.hooks.append(watch_level)
    sink.backpressure = 1.0
    await bench.run_until(lambda: not dut.w__ready.value, 10 * p["depth"] + 100, "the queue to fill")
    sink.backpressure = p.get("backpressure", 0.3)
    await bench.run_until(lambda: len(sink.received) == len(expected), 50 * len(expected) + 1000,
                          "all events")
    await bench.run_for(20)
    got = [unpack(layout, w) for w in sink.received]
    assert len(got) == len(expected), (len(got), len(expected))
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"event {i}: got {g}, expected {e} (seed {bench.seed})"
    assert max_level == p["depth"] + 1, f"the queue held at most {max_level} events"


@cocotb.test()
async def queue_latency(dut):
    """Cycles from an event entering an empty queue to it being offered at the output."""
    bench = Bench(dut)
    p = bench.params
    source = bench.source("w")
    await bench.reset()
    cycles = await latency(bench, source, pack(event_layout(p["addr_width"]), {"addr": 1}),
                           lambda: int(dut.r__valid.value))
    write_report(p["report"], {"latency_cycles": cycles})
