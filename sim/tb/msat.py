"""MSATUnit testbench: random neuron updates (ladder indices, cell boundaries hit exactly, ties
on the rung) with random idle cycles and back-pressure; every lane checked against
gen.ir.golden.msat_step (docs/msat.md §3b)."""
from types import SimpleNamespace

import cocotb
import numpy as np

from gen.ir import golden
from hw.msat_neuron import MSATUnit
from sim.tb.reference import signed_range
from sim.tb.streams import Bench, pack, unpack

UNIT_ARGS = ("lanes", "steps", "ladder_steps", "lut_half", "lut_d", "lut_x", "ladder_z", "current_width",
             "bias_width", "membrane_width", "sum_width", "theta_width", "shift_width")


def build(p):
    return MSATUnit(**{k: p[k] for k in UNIT_ARGS}, tag_width=8)


def msat_neuron(p, lane, t):
    """One neuron, one step, by the golden model: (s, m, R, S). R and S are 0 at t = 0."""
    tables = SimpleNamespace(lut_half=p["lut_half"], lut_d=np.array(p["lut_d"]), lut_x=np.array(p["lut_x"]),
                             ladder_z=np.array(p["ladder_z"]), ladder_steps=p["ladder_steps"],
                             d_shift=np.array([lane["d_shift"]]), x_shift=np.array([lane["x_shift"]]))
    layer = SimpleNamespace(theta_pos=np.array([lane["theta"]]), tables=tables)
    one = lambda v: np.array([[v]], dtype=np.int64)   # noqa: E731
    r, s_prev = (0, 0) if t == 0 else (lane["membrane"], lane["sum"])
    s, m, r_next, s_next = golden.msat_step(one(r), one(s_prev), one(lane["current"] + lane["bias"]), t, layer)
    return int(s[0, 0]), int(m[0, 0]), int(r_next[0, 0]), int(s_next[0, 0])


def random_lane(rng, p, t):
    M = p["ladder_steps"]
    lo_th, hi_th = signed_range(p["theta_width"])
    theta = rng.randint(1, hi_th >> M) << M
    lo_i, hi_i = signed_range(p["current_width"])
    lo_b, hi_b = signed_range(p["bias_width"])
    lo_m, hi_m = signed_range(p["membrane_width"])
    lo_s, hi_s = signed_range(p["sum_width"])
    small = rng.random() < 0.6
    current = rng.randint(-64, 64) if small else rng.choice([lo_i, hi_i, rng.randint(lo_i, hi_i)])
    bias = rng.choice([0, rng.randint(lo_b, hi_b)])
    r = rng.randint(-64, 64) if small else rng.randint(lo_m, hi_m)
    d_shift, x_shift = rng.randint(-3, 6), rng.randint(-3, 6)
    s = rng.randint(-64 * max(t, 1), 64 * max(t, 1)) if small else rng.randint(lo_s, hi_s)
    if t and d_shift >= 0 and rng.random() < 0.3:      # N = t·R − S exactly on a cell boundary
        s = t * r - rng.randint(-p["lut_half"], p["lut_half"]) * t * (1 << d_shift)
    if rng.random() < 0.2:                             # U on a rung (or one off)
        r = (theta >> rng.randint(0, M)) - (current + bias) + rng.choice([-1, 0, 1])
    lane = {"current": current, "bias": bias, "membrane": r, "sum": s, "theta": theta,
            "d_shift": d_shift, "x_shift": x_shift}
    _, _, r_next, s_next = msat_neuron(p, lane, t)
    fits = lo_m <= r <= hi_m and lo_s <= s <= hi_s and lo_m <= r_next <= hi_m and lo_s <= s_next <= hi_s
    return lane if fits else random_lane(rng, p, t)


@cocotb.test()
async def msat_matches_golden(dut):
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
            s, m, r, total = msat_neuron(p, lane, t)
            outs.append({"fire": s, "m": m, "membrane": r, "sum": total})
        expected.append({"tag": tag, "lanes": outs, "in": lanes, "t": t})
        n += p["lanes"]
    await bench.run_until(lambda: len(sink.received) == len(expected), 20 * len(expected) + 100, "all updates")
    fired, rungs = 0, set()
    for i, (word, exp) in enumerate(zip(sink.received, expected)):
        got = unpack(unit.out_layout, word)
        want = {"tag": exp["tag"], "lanes": exp["lanes"]}
        assert got == want, f"update {i} (t={exp['t']}, in {exp['in']}): got {got}, expected {want}"
        fired += sum(lane["fire"] for lane in got["lanes"])
        rungs |= {lane["m"] for lane in got["lanes"]}
    assert 0 < fired < n, f"degenerate stimulus: {fired} of {n} fired"
    assert rungs == set(range(p["ladder_steps"] + 1)), f"only ladder indices {sorted(rungs)} were taken"
