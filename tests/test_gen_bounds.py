"""Bounds and register widths: derived bounds are attained by an adversarial network and never exceeded."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen.ir import golden
from gen.ir.bounds import check_fits_int64, network_bounds, signed_width
from gen.ir import INPUT, Conv2d, Dense, Identity, Layer, Network, Projection
from gen.ir.random_net import random_images, random_network


@pytest.mark.parametrize("lo, hi, bits", [(0, 0, 1), (-1, 0, 1), (0, 1, 2), (-128, 127, 8), (-129, 0, 9),
                                          (0, 128, 9), (-5, 3, 4)])
def test_signed_width(lo, hi, bits):
    assert signed_width(lo, hi) == bits


def test_signed_width_rejects_empty_interval():
    with pytest.raises(ValueError, match="lo must be <= hi, not 3 > 2"):
        signed_width(3, 2)


def currents_per_step(net, images, result):
    """I^t of every layer, recomputed from the recorded spikes: {layer: [N, T, *shape]}."""
    out = {layer.name: [] for layer in net.layers}
    for t in range(net.timesteps):
        sources = {INPUT: images, **{k: v[:, t] for k, v in result.spikes.items()}}
        for layer in net.layers:
            out[layer.name].append(golden.layer_currents(layer, sources))
    return {k: np.stack(v, 1) for k, v in out.items()}


def extreme_network(sign: int, wbits=8, T=3) -> Network:
    """Every weight at +qmax (sign=+1) or the encoding layer's at -qmax (sign=-1), tiny thresholds:
    a white image then drives every layer to the edge of its current range."""
    q = 2 ** (wbits - 1) - 1
    enc = Layer("enc", "encoding", (2, 4, 4),
                (Projection(INPUT, Conv2d(3, 1, 1), np.full((2, 1, 3, 3), sign * q)),),
                bias=[5, 5], neuron="ternary", theta_pos=[1, 1], theta_neg=[-1, -1], leak_shift=2)
    hid = Layer("hid", "spiking", (2, 4, 4),
                (Projection("enc", Conv2d(3, 1, 1), np.full((2, 2, 3, 3), q)),
                 Projection("enc", Identity(), np.array([q, q]))),
                bias=[-3, -3], neuron="ternary", theta_pos=[2, 2], theta_neg=[-2, -2], leak_shift=1)
    fc = Layer("fc", "spiking", (6,), (Projection("hid", Dense(), np.full((6, 32), q)),),
               bias=np.full(6, 7), neuron="binary", theta_pos=np.full(6, 1), leak_shift=3)
    out = Layer("out", "readout", (3,), (Projection("fc", Dense(), np.full((3, 6), q)),
                                         Projection("hid", Dense(), np.full((3, 32), sign * q))), bias=[1, 2, 3])
    return Network("extreme", (1, 4, 4), T, wbits, (enc, hid, fc, out))


@pytest.mark.parametrize("sign", [1, -1])
def test_adversarial_network_reaches_its_bounds_exactly(sign):
    net = extreme_network(sign)
    images = np.full((1, 1, 4, 4), 255, np.uint8)
    result = golden.run(net, images, record=True, record_membranes=True)
    currents = currents_per_step(net, images, result)
    bounds = network_bounds(net)
    # All-positive weights turn the white image (or its ±1 spikes) into each layer's upper bound;
    # with a negative encoding layer every spike is -1 and the lower bounds are attained instead.
    attains = {"enc": 1, "hid": 1, "fc": 1, "out": 1} if sign > 0 else {"enc": 0, "hid": 0, "fc": 0}
    for layer in net.layers:
        b = bounds[layer.name]
        lo, hi = int(currents[layer.name].min()), int(currents[layer.name].max())
        assert b.current[0] <= lo and hi <= b.current[1], layer.name
        if layer.name in attains:
            assert (lo, hi)[attains[layer.name]] == b.current[attains[layer.name]], (layer.name, lo, hi, b.current)
    assert bounds["enc"].current == ((5, 5 + 127 * 255 * 9) if sign > 0 else (5 - 127 * 255 * 9, 5))
    out = bounds["out"]
    assert out.logit[0] <= result.logits.min() and result.logits.max() <= out.logit[1]
    if sign > 0:  # the readout's logits reach T × its current bound
        assert int(result.logits.max()) == out.logit[1] == 3 * (3 + 127 * 38)
    # Membranes: U^0 = I reaches the t = 0 bound; no U^t leaves its bound.
    for name, U in result.membranes.items():
        m = bounds[name].membrane
        for t in range(net.timesteps):
            assert m[t][0] <= U[:, t].min() and U[:, t].max() <= m[t][1], (name, t)
        assert int(U[:, 0].max()) == m[0][1] or int(U[:, 0].min()) == m[0][0]


def test_extreme_bounds_by_hand():
    b = network_bounds(extreme_network(1))
    assert b["hid"].current == (-3 - 127 * 19, -3 + 127 * 19)     # 2 channels × 9 taps + identity
    assert b["fc"].current == (7 - 127 * 32, 7 + 127 * 32)          # ternary sources: -1..1
    assert b["out"].current == (1 - 127 * 32, 3 + 127 * 6 + 127 * 32)  # fc is binary: 0..1
    assert b["out"].logit == (3 * (1 - 127 * 32), 3 * (3 + 127 * 6 + 127 * 32))
    assert b["out"].logit_bits == signed_width(*b["out"].logit)
    # Binary membranes can only run away downwards: R keeps any U below θ⁺.
    i_lo, i_hi = 7 - 127 * 32, 7 + 127 * 32
    fc = b["fc"].membrane
    assert fc[0] == (i_lo, i_hi)
    assert fc[1] == (i_lo + (i_lo << 3), 0 + (i_hi << 3))           # R^0 in [i_lo, 0]: θ⁺ = 1
    assert fc[2] == (fc[1][0] + (i_lo << 6), (1 << 3) - 1 + (i_hi << 6))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), extremes=st.booleans())
def test_random_networks_stay_within_bounds(seed, extremes):
    net = random_network(seed, extremes=extremes)
    images = random_images(seed, net.input_shape, 12)
    result = golden.run(net, images, record=True, record_membranes=True)
    bounds = network_bounds(net)
    currents = currents_per_step(net, images, result)
    for layer in net.layers:
        b = bounds[layer.name]
        assert b.current[0] <= currents[layer.name].min() and currents[layer.name].max() <= b.current[1]
        assert -(1 << (b.current_bits - 1)) <= b.current[0] and b.current[1] < (1 << (b.current_bits - 1))
    for name, U in result.membranes.items():
        for t, (lo, hi) in enumerate(bounds[name].membrane):
            assert lo <= U[:, t].min() and U[:, t].max() <= hi
    out = bounds[net.readout.name]
    assert out.logit[0] <= result.logits.min() and result.logits.max() <= out.logit[1]


def test_overflowing_networks_are_refused():
    net = extreme_network(1, wbits=16, T=64)
    with pytest.raises(ValueError, match=r"layer 'enc': values need \d+ bits, which must be <= 63"):
        check_fits_int64(net)
