"""SpikingLayer with msat neurons (docs/msat.md §3b) fed by an msat source: images of T random
(spike, m) maps in as (address, m) events, (address, m) events out under random back-pressure;
each step's events (a set) and its single eos are checked against gen.ir.golden (the source's
values s << (M_in − m) projected, then msat_step), image after image."""
from types import SimpleNamespace

import cocotb
import numpy as np

from gen.ir import golden
from hw.layer import SpikingLayer
from hw.msat_neuron import MSATTables
from sim.tb.reference import bits_signed, current_bound, make_geometry, make_weights, project
from sim.tb.spikes import check_steps, eos_counter, DRAIN_CYCLES
from sim.tb.streams import Bench, pack, payload_layout, unpack


def tables(p, channels):
    """The layer's ladder: random LUTs and ladder thresholds, shifts per channel (seeded)."""
    rng = np.random.default_rng(p["weight_seed"] + 2)
    M, h = p["ladder_steps"], p["lut_half"]
    z = -np.sort(-rng.choice(np.arange(-200, 200), size=M, replace=False))
    return MSATTables(ladder_steps=M, lut_half=h, lut_d=rng.integers(-200, 201, 2 * h).tolist(),
                      lut_x=rng.integers(-200, 201, 2 * h).tolist(), ladder_z=z.tolist(),
                      d_shift=rng.integers(-2, 4, channels).tolist(), x_shift=rng.integers(-2, 4, channels).tolist(),
                      half_start=bool(p["half_start"]))


def parameters(geometry, p):
    """Weights, bias and Θ (a multiple of 2^M) sized to the input's values (up to 2^M_in)."""
    weights = make_weights(geometry.weight_shape, p["weight_width"], p["weight_style"], p["weight_seed"])
    rng = np.random.default_rng(p["weight_seed"] + 1)
    bound = current_bound(weights, 1 << p["in_ladder_steps"])
    scale = max(1, bound // 8)
    step = 1 << p["ladder_steps"]
    bias = rng.integers(-scale // 4, scale // 4 + 1, size=geometry.out_channels)
    theta = (rng.integers(1, max(2, scale // step) + 1, size=geometry.out_channels) * step).astype(np.int64)
    return weights, bias, theta, bound


def build(p):
    geometry = make_geometry(p["geometry"])
    weights, bias, theta, bound = parameters(geometry, p)
    b = int(np.abs(bias).max())
    # No leak, subtract reset: |R| <= T·(max |I|) + Θ.
    r = p["steps"] * (bound + b) + int(theta.max())
    layer = SpikingLayer(geometry, weights, bias, theta, None, leak_shift=0, steps=p["steps"], kind="msat",
                         lanes=p["lanes"], weight_width=p["weight_width"], current_width=bits_signed(-bound, bound),
                         membrane_width=bits_signed(-r, r), queue_depth=p.get("queue_depth", 64),
                         msat=tables(p, geometry.out_channels), ladder_steps=p["in_ladder_steps"])
    return geometry, (weights, bias, theta), layer


def golden_layer(theta, msat):
    """What gen.ir.golden.msat_step reads of a layer."""
    t = SimpleNamespace(**{k: np.asarray(getattr(msat, k)) for k in ("lut_d", "lut_x", "ladder_z", "d_shift",
                                                                     "x_shift")},
                        lut_half=msat.lut_half, ladder_steps=msat.ladder_steps, half_start=msat.half_start)
    return SimpleNamespace(theta_pos=np.asarray(theta, np.int64), tables=t)


def msat_image(geometry, weights, bias, theta, msat, in_maps, in_ladder):
    """One image by the golden model: (s, m) maps in -> sorted (addr, m) events per step."""
    layer = golden_layer(theta, msat)
    C, positions = geometry.out_channels, geometry.out_positions
    shape = (1, C, positions)
    r = np.zeros(shape, np.int64) + ((np.asarray(theta, np.int64) >> 1).reshape(1, C, 1) if msat.half_start else 0)
    s_sum = np.zeros(shape, np.int64)
    out = []
    for t, (s_in, m_in) in enumerate(in_maps):
        values = s_in.astype(np.int64) << (in_ladder - m_in.astype(np.int64))
        current = project(geometry, weights, values).reshape(shape) + np.asarray(bias, np.int64).reshape(1, C, 1)
        s, m, r, s_sum = golden.msat_step(r, s_sum, current, t, layer)
        s, m = s.reshape(-1), m.reshape(-1)
        out.append(sorted((int(n), int(m[n])) for n in np.flatnonzero(s)))
    return out


def random_ladder_spikes(rng, size, ladder_steps):
    """A map of msat spikes (s in {0, 1}, m in 0..M) of a density drawn from empty to full."""
    density = rng.choice([0.0, 0.1, 0.3, 0.6, 1.0])
    s = np.array([int(rng.random() < density) for _ in range(size)], np.int64)
    m = np.array([rng.randint(0, ladder_steps) for _ in range(size)], np.int64)
    return s, m * s


@cocotb.test()
async def msat_layer_matches_golden(dut):
    bench = Bench(dut)
    p = bench.params
    geometry, (weights, bias, theta), layer = build(p)
    in_layout, out_layout = payload_layout(layer, "events_in"), payload_layout(layer, "events")
    source = bench.source("events_in", idle=p.get("idle", 0.3))
    sink = bench.sink("events", backpressure=p.get("backpressure", 0.3))
    await bench.reset()
    rng = bench.rng
    expected, transactions = [], 0
    while transactions < p["transactions"]:
        maps = [random_ladder_spikes(rng, geometry.in_size, p["in_ladder_steps"]) for _ in range(p["steps"])]
        expected += msat_image(geometry, weights, bias, theta, layer.sweep.msat, maps, p["in_ladder_steps"])
        for s, m in maps:
            order = [int(i) for i in np.flatnonzero(s)]
            rng.shuffle(order)
            for i in order:
                source.send(pack(in_layout, {"addr": i, "m": int(m[i]), "neg": 0}))
            source.send(pack(in_layout, {"eos": 1}))
            transactions += len(order) + geometry.out_size
    eos_received = eos_counter(sink, out_layout)
    await bench.run_until(lambda: eos_received() >= len(expected), 50 * transactions + 1000, "all steps")
    await bench.run_for(DRAIN_CYCLES)
    got, current = [], []
    for word in sink.received:
        ev = unpack(out_layout, word)
        if ev["eos"]:
            got.append(sorted(current))
            current = []
        else:
            assert ev["neg"] == 0, f"an msat event with neg set: {ev}"
            current.append((ev["addr"], ev["m"]))
    assert not current, f"{len(current)} events after the last eos"
    fired = check_steps(got, expected, p["steps"], bench.seed)
    rungs = {m for step in expected for _, m in step}
    assert len(rungs) > 1, f"only ladder indices {sorted(rungs)} fired"
    bench.dut._log.info("%d steps, %d output events at rungs %s, %d transactions matched", len(expected), fired,
                        sorted(rungs), transactions)
