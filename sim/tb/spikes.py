"""Spike maps as event streams, for the testbenches of the layers (sim/tb/encoding.py,
layer.py, readout.py): one step of a map is its events (addr, neg) in any order followed
by one eos word, so a step's events are compared as a set."""
import numpy as np

from sim.tb.streams import pack, payload_layout, unpack

DRAIN_CYCLES = 50      # after the last expected eos: long enough for a stray event to show


def random_spikes(rng, size, binary_input):
    """A spike map of `size` neurons in {-1, 0, +1} ({0, 1} with binary_input), of a density
    drawn from empty to full."""
    density = rng.choice([0.0, 0.1, 0.3, 0.6, 1.0])
    signs = [1 if binary_input else rng.choice([-1, 1]) for _ in range(size)]
    return np.array([s if rng.random() < density else 0 for s in signs], dtype=np.int64)


def send_step(source, layout, spikes, rng) -> int:
    """Queue one step of `spikes` on `source`: an event per non-zero neuron in random order,
    then the eos. Returns the number of events (the eos not counted)."""
    order = [int(i) for i in np.flatnonzero(spikes)]
    rng.shuffle(order)
    for i in order:
        source.send(pack(layout, {"addr": i, "neg": int(spikes[i] < 0)}))
    source.send(pack(layout, {"eos": 1}))
    return len(order)


def step_events(spikes) -> list[tuple[int, int]]:
    """The events a spike map must give, as split_steps lists them: sorted (addr, neg)."""
    return sorted((int(n), int(spikes[n] < 0)) for n in np.flatnonzero(spikes))


def split_steps(events):
    """Output events -> per step sorted (addr, neg) lists, split at eos; and the events after
    the last eos."""
    steps, current = [], []
    for ev in events:
        if ev["eos"]:
            steps.append(sorted(current))
            current = []
        else:
            current.append((ev["addr"], ev["neg"]))
    return steps, current


def eos_counter(sink, layout):
    """A function that returns how many eos words `sink` has received so far. Each word is
    tested once, on its raw bits: unpacking every word on every cycle would cost more than
    the simulation."""
    eos_bit = 1 << dict(iter(layout))["eos"].offset
    seen = count = 0

    def eos_received() -> int:
        nonlocal seen, count
        words = sink.received
        while seen < len(words):
            count += bool(words[seen] & eos_bit)
            seen += 1
        return count
    return eos_received


async def collect_steps(bench, sink, layout, steps: int, max_cycles: int) -> list[list[tuple[int, int]]]:
    """Run until `sink` has received `steps` eos words, and DRAIN_CYCLES more; returns each
    step's events (split_steps). Fails on a timeout or on events after the last eos."""
    eos_received = eos_counter(sink, layout)
    await bench.run_until(lambda: eos_received() >= steps, max_cycles, "all steps")
    await bench.run_for(DRAIN_CYCLES)
    got, tail = split_steps([unpack(layout, w) for w in sink.received])
    assert not tail, f"{len(tail)} events after the last eos"
    return got


def check_steps(got, expected, steps_per_image: int, seed: int) -> int:
    """Compare output steps with the expected ones, image by image; returns how many events
    fired. Fails on the first differing step, or when nothing fired at all (a stimulus that
    checks nothing)."""
    assert len(got) == len(expected), f"{len(got)} steps out, expected {len(expected)}"
    fired = 0
    for i, (g, e) in enumerate(zip(got, expected)):
        image, t = divmod(i, steps_per_image)
        assert g == e, (f"image {image} step {t}: {len(g)} events, expected {len(e)}; "
                        f"first difference {sorted(set(g) ^ set(e))[:5]} (seed {seed})")
        fired += len(e)
    assert fired > 0, "degenerate stimulus: nothing fired"
    return fired


async def check_layer_steps(bench, layer, in_port: str, send_image):
    """The whole check of a layer whose output stream `events` carries spike steps.

    Images go in on `in_port` (random idle cycles) until the params' `transactions` are
    reached, each by `send_image(rng, source, in_layout)`, which queues one image and returns
    (the steps it must give, as step_events lists; its transactions). The steps come out
    under random back-pressure and are compared with those, image after image.
    """
    await check_multi_input_steps(bench, layer, [in_port],
                                  lambda rng, inputs: send_image(rng, *inputs[in_port]))


async def check_multi_input_steps(bench, component, in_ports, send_image):
    """check_layer_steps for a component with several input streams (a layer with several
    projections, a small graph of engines): one source per port in `in_ports`, each with its
    own share of idle cycles (the params' `idle`: one share, or one per port), and
    `send_image(rng, inputs)` with inputs = {port: (source, layout)}."""
    p = bench.params
    idle = p.get("idle", 0.3)
    idle = idle if isinstance(idle, list) else [idle] * len(in_ports)
    inputs = {port: (bench.source(port, idle=share), payload_layout(component, port))
              for port, share in zip(in_ports, idle)}
    out_layout = payload_layout(component, "events")
    sink = bench.sink("events", backpressure=p.get("backpressure", 0.3))
    await bench.reset()
    expected = []
    transactions = images = 0
    while transactions < p["transactions"]:
        steps, work = send_image(bench.rng, inputs)
        expected += steps
        transactions += work
        images += 1
    got = await collect_steps(bench, sink, out_layout, len(expected), 50 * transactions + 1000)
    fired = check_steps(got, expected, p["steps"], bench.seed)
    bench.dut._log.info("%d images, %d steps, %d output events, %d transactions matched",
                        images, len(expected), fired, transactions)
