"""SkidBuffer testbench: random beats in with random idle cycles, random back-pressure out
(long stalls now and then); every beat must come out once, in order, and both entries must
fill (input ready low) so that the skid entry is exercised. Params: width, beats, and
`full_rate` (no idle, no back-pressure: one beat per cycle must pass, latency one cycle)."""
import cocotb

from sim.tb.streams import Bench


@cocotb.test()
async def skid_passes_every_beat_in_order(dut):
    bench = Bench(dut)
    p = bench.params
    rng = bench.rng
    full_rate = p.get("full_rate", False)
    source = bench.source("w", idle=0.0 if full_rate else 0.3)
    sink = bench.sink("r", backpressure=0.0 if full_rate else 0.3)
    await bench.reset()
    expected = [rng.randrange(1 << p["width"]) for _ in range(p["beats"])]
    for word in expected:
        source.send(word)
    stalls = 0

    def watch(b):
        nonlocal stalls
        stalls += not int(dut.w__ready.value)
        if not full_rate and b.cycle % 100 == 0:   # a long stall, then free flow, then random
            sink.backpressure = rng.choice([0.0, 0.3, 0.9])
    bench.hooks.append(watch)
    cycles = await bench.run_until(lambda: len(sink.received) == len(expected), 100 * len(expected) + 100,
                                   "every beat out")
    await bench.run_for(10)
    assert len(sink.received) == len(expected), f"{len(sink.received)} beats out, {len(expected)} in"
    for k, (got, want) in enumerate(zip(sink.received, expected)):
        assert got == want, f"beat {k}: got {got:#x}, expected {want:#x} (seed {bench.seed})"
    if full_rate:
        # One beat per cycle after the first's one cycle of latency.
        assert cycles == len(expected) + 1, f"{cycles} cycles for {len(expected)} beats at full rate"
        assert stalls == 0, "the input stalled with the output always ready"
    else:
        assert stalls > 0, "the buffer never filled: the stimulus did not test back-pressure"
