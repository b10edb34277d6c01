"""LIFUnit (kind if_subtract) testbench: random neuron updates, ties on θ⁺ and θ⁻, balances
at 0 and above, with random idle cycles and back-pressure; every lane checked against
gen.ir.golden.if_subtract_step (docs/msat.md §3a)."""
from types import SimpleNamespace

import cocotb
import numpy as np

from gen.ir import golden
from hw.lif import LIFUnit
from sim.tb.reference import signed_range
from sim.tb.streams import Bench, pack, unpack


def build(p):
    return LIFUnit(lanes=p["lanes"], steps=p["steps"], leak_shift=0, kind="if_subtract",
                   current_width=p["current_width"], bias_width=p["bias_width"],
                   membrane_width=p["membrane_width"], theta_width=p["theta_width"], tag_width=8,
                   counter_width=p["counter_width"], correction=p["correction"])


def if_subtract_neuron(r_prev, n_prev, current, t, lane, correction):
    """One neuron, one step, by the golden model: (spike, R, n). R and n are 0 at t = 0."""
    layer = SimpleNamespace(theta_pos=np.array([lane["theta_pos"]]), theta_neg=np.array([lane["theta_neg"]]),
                            tables=SimpleNamespace(amplitude=np.array([lane["amplitude"]]), signed=correction))
    as_array = lambda v: np.array([[0 if t == 0 else v]], dtype=np.int64)   # noqa: E731
    s, r, n = golden.if_subtract_step(as_array(r_prev), as_array(n_prev), np.array([[current]], np.int64), layer)
    return int(s[0, 0]), int(r[0, 0]), int(n[0, 0])


def random_lane(rng, p, t):
    lo_th, hi_th = signed_range(p["theta_width"])
    theta_neg, theta_pos = sorted(rng.sample(range(lo_th, hi_th + 1), 2))
    amplitude = rng.choice([1, hi_th, rng.randint(1, hi_th)])
    lo_i, hi_i = signed_range(p["current_width"])
    lo_b, hi_b = signed_range(p["bias_width"])
    current = rng.choice([lo_i, hi_i, rng.randint(lo_i, hi_i), rng.randint(max(lo_i, -4), min(hi_i, 4))])
    bias = rng.choice([lo_b, hi_b, rng.randint(lo_b, hi_b), 0])
    lo_m, hi_m = signed_range(p["membrane_width"])
    r = rng.randint(lo_m, hi_m)
    if rng.random() < 0.4:   # a tie (or one off) on either threshold
        r = rng.choice([theta_pos, theta_neg]) - (current + bias) + rng.choice([-1, 0, 0, 1])
        if not lo_m <= r <= hi_m:
            r = rng.randint(lo_m, hi_m)
    # The balance after t steps is at most t; 0 (no −1 allowed) in a third of the draws.
    count = rng.choice([0, rng.randint(0, t), t]) if t else rng.randint(0, p["steps"])   # ignored at t = 0
    lane = {"current": current, "bias": bias, "membrane": r, "theta_pos": theta_pos, "theta_neg": theta_neg,
            "amplitude": amplitude, "count": count}
    # A real layer's bounds keep R' inside the membrane register; stimuli whose R' would not
    # fit are drawn again.
    _, r_next, _ = if_subtract_neuron(r, count, current + bias, t, lane, p["correction"])
    return lane if lo_m <= r_next <= hi_m else random_lane(rng, p, t)


@cocotb.test()
async def if_subtract_matches_golden(dut):
    bench = Bench(dut)
    p = bench.params
    unit = build(p)
    source, sink = bench.random_streams("neurons", "updates", default=0.2)
    await bench.reset()
    rng = bench.rng
    expected = []
    n = 0
    while n < p["updates"]:
        t = rng.randrange(p["steps"])
        lanes = [random_lane(rng, p, t) for _ in range(p["lanes"])]
        tag = rng.randrange(256)
        source.send(pack(unit.in_layout, {"t": t, "tag": tag, "lanes": lanes}))
        outs = []
        for lane in lanes:
            s, r, count = if_subtract_neuron(lane["membrane"], lane["count"], lane["current"] + lane["bias"], t,
                                             lane, p["correction"])
            outs.append({"fire": int(s != 0), "neg": int(s < 0), "membrane": r, "count": count})
        expected.append({"tag": tag, "lanes": outs, "in": lanes, "t": t})
        n += p["lanes"]
    await bench.run_until(lambda: len(sink.received) == len(expected), 20 * len(expected) + 100,
                          "all updates")
    spikes = {1: 0, -1: 0}
    for i, (word, exp) in enumerate(zip(sink.received, expected)):
        got = unpack(unit.out_layout, word)
        want = {"tag": exp["tag"], "lanes": exp["lanes"]}
        assert got == want, f"update {i} (t={exp['t']}, in {exp['in']}): got {got}, expected {want}"
        for lane in got["lanes"]:
            if lane["fire"]:
                spikes[-1 if lane["neg"] else 1] += 1
    assert 0 < spikes[1] < n, f"degenerate stimulus: {spikes[1]} of {n} fired +1"
    # A −1 needs a balance, so at least one earlier step (t > 0): none at T = 1.
    takes_back = p["correction"] and p["steps"] > 1
    assert (spikes[-1] > 0) == takes_back, f"{spikes[-1]} −1 spikes with correction={p['correction']}, T={p['steps']}"
