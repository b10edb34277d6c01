"""Quantisation (SPEC §3): power-of-two scales, exact thresholds, and golden == fake-quantised model."""
import numpy as np
import pytest

from gen.errors import ModelError
from gen.frontend import compile_dict
from gen.ir.golden import run
from gen.ir import Conv2d, Dense, Identity
from gen.frontend.quantise import best_exponent, quantise
from gen.ir.random_net import random_checkpoint, random_images
from gen.ir.reference import FloatLayer, FloatNetwork, FloatProjection, run_reference


@pytest.mark.parametrize("max_abs, wbits, e", [(1.0, 8, 6), (0.996, 8, 7), (0.5, 8, 7), (127.0, 8, 0),
                                                (127.6, 8, -1), (3.0, 4, 1), (1e-3, 8, 16)])
def test_best_exponent(max_abs, wbits, e):
    assert best_exponent(max_abs, wbits) == e
    q = 2 ** (wbits - 1) - 1
    assert np.round(np.ldexp(max_abs, e)) <= q < np.round(np.ldexp(max_abs, e + 1))


def test_zero_weights_have_no_exponent():
    assert best_exponent(0.0, 8) is None


def float_net(enc_weight, hid_weights, out_weight, theta=0.5, hid_theta=None, neuron="ternary"):
    """input (1, 2, 2) -> enc conv 1×1 (2 ch) -> hid dense (3) [+ shortcut dense from enc] -> out dense (2)."""
    enc = FloatLayer("enc", "encoding", (2, 2, 2), (FloatProjection("input", Conv2d(1), np.asarray(enc_weight)),),
                     np.zeros(2), neuron, np.full(2, theta), np.full(2, -theta) if neuron == "ternary" else None, 2)
    ht = np.full(3, theta) if hid_theta is None else np.asarray(hid_theta)
    hid = FloatLayer("hid", "spiking", (3,), tuple(FloatProjection("enc", Dense(), np.asarray(w)) for w in hid_weights),
                     np.array([0.1, -0.2, 0.3]), neuron, ht, -ht if neuron == "ternary" else None, 1)
    out = FloatLayer("out", "readout", (2,), (FloatProjection("hid", Dense(), np.asarray(out_weight)),),
                     np.array([0.25, -1.0]), None, None, None, 0)
    return FloatNetwork("f", (1, 2, 2), 2, (enc, hid, out))


def test_scale_per_channel_covers_every_projection_and_readout_shares_one():
    enc_w = np.array([[[[0.01]]], [[[-0.003]]]])
    main = np.array([[0.5] * 8, [0.02] * 8, [0.0] * 8])
    shortcut = np.array([[0.1] * 8, [-0.9] * 8, [0.0] * 8])  # channel 1's largest weight is in the shortcut
    net = quantise(float_net(enc_w, [main, shortcut], np.array([[1.0, 0.1, 0.2], [0.05, 0.01, 0.02]])))
    enc, hid, out = net.layers
    assert enc.scale_exp.tolist() == [best_exponent(0.01, 8), best_exponent(0.003, 8)]
    assert hid.scale_exp[0] == best_exponent(0.5, 8) == 7
    assert hid.scale_exp[1] == best_exponent(0.9, 8) == 7
    assert out.scale_exp.tolist() == [6, 6]  # one scale, set by the largest weight (1.0)
    assert out.bias.tolist() == [16, -64]
    for layer in net.layers:
        for p in layer.projections:
            assert np.abs(p.weight).max() <= 127
    # e is the largest that fits: one more and some weight of the channel would exceed 127.
    assert np.round(0.9 * 2 ** 8) > 127


def test_all_zero_channel_gets_a_sane_scale_and_exact_threshold():
    enc_w = np.array([[[[0.01]]], [[[-0.003]]]])
    main = np.array([[0.5] * 8, [0.02] * 8, [0.0] * 8])  # channel 2 receives nothing
    net = quantise(float_net(enc_w, [main], np.ones((2, 3))))
    hid = net.layers[1]
    assert hid.scale_exp[2] == hid.scale_exp.max()
    assert hid.theta_pos[2] == 0.5 * 2 ** int(hid.scale_exp[2])
    assert hid.bias[2] == round(0.3 * 2 ** int(hid.scale_exp[2]))


def test_theta_must_stay_exact():
    # Weights of 100 need e = 0 at 8 bits, but θ = 0.5 needs e >= 1.
    enc_w = np.array([[[[100.0]]], [[[1.0]]]])
    with pytest.raises(ModelError, match=r"layer 'enc': channel 0: the largest weight 100 needs scale exponent 0 for "
                                         r"wbits=8, below 1, the smallest that keeps θ⁺=0.5 exact"):
        quantise(float_net(enc_w, [np.ones((3, 8))], np.ones((2, 3))))
    assert quantise(float_net(enc_w, [np.ones((3, 8))], np.ones((2, 3))), wbits=9).layers[0].theta_pos[0] == 1


def test_thresholds_that_round_together_are_refused():
    enc_w = np.array([[[[0.01]]], [[[0.01]]]])
    hid = [np.full((3, 8), 60.0)]   # e = 1
    with pytest.raises(ModelError, match=r"layer 'hid': channel 0: θ⁻ and θ⁺ round to 0 >= 0 at scale 2\^1"):
        quantise(float_net(enc_w, hid, np.ones((2, 3)), hid_theta=[0.2, 0.2, 0.2]))


def test_wbits_is_validated():
    with pytest.raises(ValueError, match="wbits must be an int between 2 and 16, not 1"):
        quantise(float_net(np.ones((2, 1, 1, 1)), [np.ones((3, 8))], np.ones((2, 3))), wbits=1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("wbits", [4, 8])
def test_compiled_checkpoint_golden_equals_fake_quantised(seed, wbits):
    try:
        compiled = compile_dict(random_checkpoint(seed), wbits=wbits)
    except ModelError as exc:  # 4-bit weights may not keep θ exact: a refusal is the correct outcome
        assert wbits == 4 and "smallest that keeps θ" in str(exc)
        return
    net = compiled.network
    images = random_images(seed, net.input_shape, 40)
    g, r = run(net, images, record=True), run_reference(net, images)
    for name in g.spikes:
        assert np.array_equal(g.spikes[name], r.spikes[name])
    assert np.array_equal(g.logits, r.logit_sums * 2.0 ** int(net.readout.scale_exp[0]))


def test_a_subnormal_weight_is_refused_as_a_model_error_not_an_overflow():
    """Issue 12: log2(qmax / 5e-324) overflowed to inf and floor(inf) raised OverflowError."""
    import warnings

    e = best_exponent(5e-324, 8)
    assert np.round(np.ldexp(5e-324, e)) <= 127 < np.round(np.ldexp(5e-324, e + 1))
    ckpt = random_checkpoint(3)
    name = next(k for k in ckpt["state_dict"] if k.endswith(".weight"))
    weight = ckpt["state_dict"][name].double()
    weight[0] = 1e-310                       # a whole output channel of float64 subnormals
    ckpt["state_dict"][name] = weight
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no RuntimeWarning may reach the user's terminal
        with pytest.raises(ModelError, match=r"scaled by 2\^e reaches"):
            compile_dict(ckpt)
