"""StreamFork testbench: random events in with random idle cycles, each output under its
own random back-pressure (one of them stalled for long stretches); every output must see
every beat once, in order, and the fork must fill (input ready low) and drain."""
import cocotb

from hw.event import event_layout
from hw.fork import output_name
from sim.tb.streams import Bench, pack, unpack


@cocotb.test()
async def fork_passes_every_beat_to_every_output(dut):
    bench = Bench(dut)
    p = bench.params
    layout = event_layout(p["addr_width"])
    rng = bench.rng
    source = bench.source("w", idle=p.get("idle", 0.3))
    sinks = [bench.sink(output_name(i), backpressure=rng.choice([0.0, 0.3, 0.7]))
             for i in range(p["outputs"])]
    await bench.reset()
    expected = []
    for _ in range(p["beats"]):
        eos = rng.random() < 0.05
        ev = {"addr": 0 if eos else rng.randrange(1 << p["addr_width"]), "neg": rng.randrange(2) * (not eos),
              "eos": int(eos)}
        source.send(pack(layout, ev))
        expected.append(ev)
    full_seen = 0

    def watch(b):
        nonlocal full_seen
        full_seen += not int(dut.w__ready.value)
        if b.cycle % 200 == 0:   # now and then one output stops for a while, the others go on
            stalled = rng.randrange(len(sinks))
            for i, s in enumerate(sinks):
                s.backpressure = 1.0 if i == stalled else rng.choice([0.0, 0.3, 0.7])
        if b.cycle % 200 == 100:
            for s in sinks:
                s.backpressure = rng.choice([0.0, 0.3])
    bench.hooks.append(watch)
    await bench.run_until(lambda: all(len(s.received) == len(expected) for s in sinks),
                          100 * len(expected) + 1000, "every beat at every output")
    await bench.run_for(20)
    for i, s in enumerate(sinks):
        got = [unpack(layout, w) for w in s.received]
        assert len(got) == len(expected), f"output {i}: {len(got)} beats, expected {len(expected)}"
        for k, (g, e) in enumerate(zip(got, expected)):
            assert g == e, f"output {i} beat {k}: got {g}, expected {e} (seed {bench.seed})"
    assert full_seen > 0, "the fork never filled: the stimulus did not test back-pressure"
