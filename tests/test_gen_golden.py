"""The golden model (SPEC §4): primitives by hand, and equality with the float64 fake-quantised model."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen.ir import golden
from gen.ops import arith
from gen.ir import Conv2d, Dense, Identity, Layer, Network, Projection
from gen.ir.random_net import random_images, random_network
from gen.ir.reference import run_reference


def test_lif_step_ternary_ties_fire_and_reset_hard():
    theta_pos, theta_neg = np.array([4]), np.array([-4])
    R = np.zeros((1, 1, 4), np.int64)
    I = np.array([[[4, -4, 3, -3]]])
    s, R = golden.lif_step(R, I, 0, theta_pos, theta_neg, 2, "ternary")
    assert s.tolist() == [[[1, -1, 0, 0]]] and s.dtype == np.int8
    assert R.tolist() == [[[0, 0, 3, -3]]]
    # t = 1, k = 2: U = R + (I << 2); thresholds are 4 << 2 = 16.
    s, R = golden.lif_step(R, np.array([[[0, 0, 3, -4]]]), 1, theta_pos, theta_neg, 2, "ternary")
    # U = [0, 0, 3 + 12, -3 - 16] = [0, 0, 15, -19]: 15 stays below 16, -19 fires.
    assert s.tolist() == [[[0, 0, 0, -1]]]
    assert R.tolist() == [[[0, 0, 15, 0]]]


def test_lif_step_thresholds_shift_with_t():
    # U = 3 + (3 << 2) = 15 does not reach 4 << 2 = 16; U = 4 + (3 << 2) = 16 does (a tie fires).
    s, R = golden.lif_step(np.array([[3, 4]]), np.array([[3, 3]]), 1, np.array([4, 4]), np.array([-4, -4]), 2, "ternary")
    assert s.tolist() == [[0, 1]] and R.tolist() == [[15, 0]]


def test_lif_step_binary_never_fires_negative_and_keeps_negative_membrane():
    s, R = golden.lif_step(np.zeros((1, 3), np.int64), np.array([[5, -9, 2]]), 0, np.array([5, 5, 5]), None, 1, "binary")
    assert s.tolist() == [[1, 0, 0]] and R.tolist() == [[0, -9, 2]]


def test_lif_step_per_channel_asymmetric_thresholds():
    I = np.array([[[2], [-1]]])  # [N=1, C=2, 1]
    s, _ = golden.lif_step(np.zeros_like(I), I, 0, np.array([3, 5]), np.array([-6, -1]), 0, "ternary")
    assert s.reshape(-1).tolist() == [0, -1]


def naive_conv(x, w, stride, padding, pad_value=()):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), np.int64)
    if pad_value:
        xp[:] = np.array(pad_value).reshape(1, c, 1, 1)
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    ho, wo = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    out = np.zeros((n, o, ho, wo), np.int64)
    for y in range(ho):
        for x_ in range(wo):
            patch = xp[:, :, y * stride:y * stride + k, x_ * stride:x_ * stride + k]
            out[:, :, y, x_] = np.einsum("ncij,ocij->no", patch, w)
    return out


@pytest.mark.parametrize("k, stride, padding, pad_value", [(3, 1, 1, ()), (3, 2, 1, (17, 200)), (2, 2, 0, ()), (1, 1, 0, ()), (5, 3, 2, (0, 9))])
def test_project_conv_matches_naive_loops(k, stride, padding, pad_value):
    rng = np.random.default_rng(k * 10 + stride)
    x = rng.integers(0, 256, (3, 2, 7, 8), dtype=np.uint8)
    w = rng.integers(-127, 128, (4, 2, k, k))
    got = golden.project(Conv2d(k, stride, padding, pad_value), w, x)
    assert got.dtype == np.int64
    assert np.array_equal(got, naive_conv(x.astype(np.int64), w, stride, padding, pad_value))


def test_project_dense_and_identity():
    x = np.array([[[[1, -1], [0, 1]]]], np.int8)  # [1, 1, 2, 2]
    w = np.array([[1, 2, 3, 4], [-1, 0, 0, 5]])
    assert golden.project(Dense(), w, x).tolist() == [[1 - 2 + 4, -1 + 5]]
    assert golden.project(Identity(), np.array([7]), x).tolist() == [[[[7, -7], [0, 7]]]]


def test_fanout_counts_border_clipping():
    # 3×3 conv, stride 1, padding 1, on a 3×3 map, 4 output channels: a corner input reaches
    # 2×2 output positions, the centre 3×3, per output channel.
    f = golden.fanout(Conv2d(3, 1, 1), np.zeros((4, 1, 3, 3)), (1, 3, 3), (4, 3, 3))
    assert f[0, 0, 0] == 4 * 4 and f[0, 1, 1] == 9 * 4 and f[0, 0, 1] == 6 * 4
    # stride 2 without padding on 5×5: input 1 is read by output 0 (tap 1), input 2 by outputs 0 and 1.
    f = golden.fanout(Conv2d(3, 2, 0), np.zeros((1, 1, 3, 3)), (1, 5, 5), (1, 2, 2))
    assert f[0, 0, :].tolist() == [1, 1, 2, 1, 1]


def _two_layer(neuron="ternary"):
    enc = Layer("enc", "encoding", (2, 2, 2), (Projection("input", Conv2d(1), np.array([[[[1]]], [[[-1]]]])),),
                bias=[0, 0], neuron=neuron, theta_pos=[100, 100], theta_neg=[-100, -100] if neuron == "ternary" else None)
    out = Layer("out", "readout", (3,), (Projection("enc", Dense(), np.ones((3, 8), np.int64)),), bias=[5, 5, 4])
    return Network("two", (1, 2, 2), 3, 8, (enc, out))


def test_run_records_events_sops_and_picks_the_smallest_index_of_the_max():
    net = _two_layer()
    images = np.array([[[[255, 0], [100, 0]]]], np.uint8)
    result = golden.run(net, images, record=True)
    # Channel 0 fires +1 where the pixel >= 100; channel 1 fires -1 there. Same every step (k = 0, reset).
    assert result.spikes["enc"][0, 0].tolist() == [[[1, 0], [1, 0]], [[-1, 0], [-1, 0]]]
    assert result.events["enc"].tolist() == [[4, 4, 4]]
    assert result.sops["out"].tolist() == [[12, 12, 12]]          # 4 events × fan-out 3
    assert result.logits.tolist() == [[15, 15, 12]]               # Σ_t (bias + 0) over 3 steps
    assert result.classes.tolist() == [0]                          # tie between 0 and 1 -> 0


def test_run_rejects_bad_images():
    net = _two_layer()
    with pytest.raises(TypeError, match="images must be uint8 pixels, not dtype float64"):
        golden.run(net, np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"images must have shape \[N, 1, 2, 2\], not \[1, 1, 3, 3\]"):
        golden.run(net, np.zeros((1, 1, 3, 3), np.uint8))


def assert_golden_equals_reference(net, images):
    g = golden.run(net, images, record=True)
    r = run_reference(net, images)
    for name in g.spikes:
        assert np.array_equal(g.spikes[name], r.spikes[name]), name
    c = 2.0 ** int(net.readout.scale_exp[0])
    assert np.array_equal(g.logits, (r.logit_sums * c).astype(np.int64))
    assert np.array_equal(r.logit_sums * c, np.round(r.logit_sums * c))  # no rounding anywhere
    assert np.array_equal(g.classes, r.classes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), extremes=st.booleans())
def test_golden_equals_float64_fake_quantised_model(seed, extremes):
    net = random_network(seed, extremes=extremes)
    assert_golden_equals_reference(net, random_images(seed, net.input_shape, 16))


def test_chunking_does_not_change_results():
    net = random_network(7, shortcuts=True)
    images = random_images(7, net.input_shape, 23)
    a, b = golden.run(net, images, record=True, chunk=5), golden.run(net, images, record=True)
    assert np.array_equal(a.logits, b.logits)
    assert all(np.array_equal(a.spikes[k], b.spikes[k]) and np.array_equal(a.sops[k], b.sops[k]) for k in a.spikes)


def test_exact_dtype_picks_the_cheapest_exact_arithmetic():
    assert golden.exact_dtype(288, 1, 127) == np.float32
    assert golden.exact_dtype(2, 2 ** 23, 1) == np.float64          # a sum could reach 2^24
    assert golden.exact_dtype(1, 2 ** 40, 2 ** 13) == np.int64       # 2^53: beyond float64


def test_int_matmul_is_exact_at_the_float_limits():
    big = 2 ** 52 - 1   # one term near the float64 limit: routed to int64, exact
    a = np.array([[big, 1]], np.int64)
    b = np.array([[1], [1]], np.int64)
    assert golden.int_matmul(a, b).tolist() == [[big + 1]]
    a = np.array([[2 ** 23 - 1, 2 ** 23]], np.int64)  # float32 would round 2^24 - 1 + ... : must use float64
    assert golden.int_matmul(a, np.array([[1], [1]])).tolist() == [[2 ** 24 - 1]]


@pytest.mark.parametrize("seed", range(8))
def test_float_blas_path_equals_int64_path(seed, monkeypatch):
    net = random_network(seed, wbits=int(np.random.default_rng(seed).choice([8, 12, 16])), extremes=seed % 2 == 0)
    images = random_images(seed, net.input_shape, 10)
    fast = golden.run(net, images, record=True)
    monkeypatch.setattr(arith, "USE_EXACT_FLOAT_MATMUL", False)
    slow = golden.run(net, images, record=True)
    assert np.array_equal(fast.logits, slow.logits)
    assert all(np.array_equal(fast.spikes[k], slow.spikes[k]) for k in fast.spikes)
