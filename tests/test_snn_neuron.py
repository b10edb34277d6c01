"""Ternary/binary LIF semantics (SPEC §1) on hand-computed sequences, and their gradients.

Currents are dyadic fractions so that every membrane value below is exact in float32.
"""
import pytest
import torch

from snn.neuron import LIF, BinaryLIF, TernaryLIF, tau_shift_from
from snn.surrogate import ATan, Sigmoid, StraightThrough, get_surrogate


def run(neuron, currents, **kwargs):
    """Spikes of one neuron for a list of per-step currents (T steps, batch 1)."""
    lif = neuron(**kwargs)
    current = torch.tensor(currents, dtype=torch.float32).view(len(currents), 1)
    return lif(current).view(-1).tolist()


def test_tie_at_exactly_theta_fires_both_signs():
    assert run(TernaryLIF, [0.5]) == [1.0]
    assert run(TernaryLIF, [-0.5]) == [-1.0]
    assert run(TernaryLIF, [0.4999]) == [0.0]
    assert run(TernaryLIF, [-0.4999]) == [0.0]
    assert run(BinaryLIF, [0.5]) == [1.0]


def test_theta_is_half_of_v_threshold():
    assert run(TernaryLIF, [0.75, -0.75, 0.5], v_threshold=1.5) == [1.0, -1.0, 0.0]
    assert TernaryLIF(v_threshold=1.5).theta == 0.75


def test_negative_spike_and_reset_after_either_sign():
    # t0: u = -0.75 -> -1, reset; t1: u = 0.25 (no carry-over) -> 0; t2: u = 0.0625 + 0.4375 = 0.5 -> +1 (tie)
    assert run(TernaryLIF, [-0.75, 0.25, 0.4375]) == [-1.0, 0.0, 1.0]
    # t0: +1, reset; t1: u = 0.375 (the 0.75 is gone) -> 0
    assert run(TernaryLIF, [0.75, 0.375]) == [1.0, 0.0]
    # without a reset t1 would see 0.25*0.375 + 0.375 = 0.46875: still 0; and t2 then fires from carry-over
    assert run(TernaryLIF, [0.375, 0.375, 0.390625]) == [0.0, 0.0, 1.0]  # u2 = 0.1171875 + 0.390625 = 0.5078125


def test_leak_k2_versus_k1():
    # k=2: u1 = 0.375/4 + 0.375 = 0.46875 < 0.5;  k=1: u1 = 0.375/2 + 0.375 = 0.5625 >= 0.5
    assert run(TernaryLIF, [0.375, 0.375], tau_shift=2) == [0.0, 0.0]
    assert run(TernaryLIF, [0.375, 0.375], tau_shift=1) == [0.0, 1.0]
    assert run(TernaryLIF, [-0.375, -0.375], tau_shift=1) == [0.0, -1.0]
    # k=2 tie: 0.25/4 + 0.4375 = 0.5 exactly
    assert run(TernaryLIF, [0.25, 0.4375], tau_shift=2) == [0.0, 1.0]


def test_default_leak_is_a_quarter_and_tau_argument_is_accepted():
    assert TernaryLIF().tau_shift == 2 and TernaryLIF().tau == 0.25
    assert TernaryLIF(tau=0.5).tau_shift == 1
    assert run(TernaryLIF, [0.375, 0.375], tau=0.5) == [0.0, 1.0]
    assert tau_shift_from(tau=1.0) == 0


@pytest.mark.parametrize("tau", [0.3, 2.0, 0.0, -0.25, "0.25"])
def test_tau_that_is_not_a_power_of_two_is_refused(tau):
    with pytest.raises(ValueError, match=r"tau must be a power of two 2\^-k with k in \[0, 16\] "
                                         r"\(the leak factor, e.g. 0.25; not SpikingJelly's time constant\), not "):
        TernaryLIF(tau=tau)


def test_tau_and_tau_shift_must_agree():
    with pytest.raises(ValueError, match=r"tau and tau_shift must agree \(tau = 2\^-tau_shift\), not 0.5 and 2"):
        TernaryLIF(tau=0.5, tau_shift=2)


@pytest.mark.parametrize("kwargs, message", [
    ({"neuron": "quaternary"}, "neuron must be one of ['ternary', 'binary'], not 'quaternary'"),
    ({"v_threshold": 0}, "v_threshold must be a finite number > 0, not 0"),
    ({"tau_shift": -1}, "tau_shift must be an int in [0, 16], not -1"),
    ({"v_reset": 0.5}, "v_reset must be 0.0 (Tern neurons reset hard to 0), not 0.5"),
    ({"step_mode": "s"}, "step_mode must be 'm' (multi-step tensors [T, B, ...]), not 's'"),
    ({"mpbn": 0}, "mpbn must be None or a number of channels >= 1, not 0"),
    ({"surrogate_function": "relu"}, "surrogate_function must be one of ['atan', 'sigmoid', 'ste'] or a Surrogate, not 'relu'"),
])
def test_bad_parameters_are_refused_with_clear_messages(kwargs, message):
    with pytest.raises(ValueError) as info:
        LIF(**kwargs)
    assert str(info.value) == message


def test_amplitude_must_be_bool():
    with pytest.raises(TypeError, match="amplitude must be a bool, not 1"):
        LIF(amplitude=1)


def test_t1_and_batch_shapes():
    lif = TernaryLIF()
    current = torch.tensor([[[0.6, -0.6, 0.1]]])  # [T=1, B=1, 3]
    assert lif(current).tolist() == [[[1.0, -1.0, 0.0]]]
    x = torch.randn(4, 3, 2, 5, 5)
    assert lif(x).shape == x.shape
    with pytest.raises(ValueError, match=r"input must be a multi-step tensor \[T, B, ...\], not shape \(3,\)"):
        lif(torch.zeros(3))


def test_binary_ignores_negative_current_and_resets_only_after_a_spike():
    assert run(BinaryLIF, [-0.75, -0.75]) == [0.0, 0.0]
    assert run(TernaryLIF, [-0.75, -0.75]) == [-1.0, -1.0]
    # binary keeps the negative membrane: u1 = -0.25 + 0.625 = 0.375 -> 0; ternary reset it (t0 fired -1): u1 = 0.625 -> 1
    assert run(BinaryLIF, [-1.0, 0.625]) == [0.0, 0.0]
    assert run(TernaryLIF, [-1.0, 0.625]) == [-1.0, 1.0]
    assert run(BinaryLIF, [0.75, 0.375]) == [1.0, 0.0]


def test_amplitude_scales_the_output_and_learns():
    lif = TernaryLIF(amplitude=True)
    with torch.no_grad():
        lif.amplitude.fill_(0.5)
    current = torch.tensor([[0.75, -0.75, 0.0]]).view(1, 1, 3).requires_grad_()
    out = lif(current)
    assert out.view(-1).tolist() == [0.5, -0.5, 0.0]
    out.sum().backward()
    # d(sum a*s)/da = sum s = 0 here; use a weighted sum to see a non-zero gradient
    lif.amplitude.grad = None
    (lif(current) * torch.tensor([2.0, -1.0, 0.0]).view(1, 1, 3)).sum().backward()
    assert lif.amplitude.grad.item() == pytest.approx(3.0)
    assert list(dict(lif.named_parameters())) == ["amplitude"]


def test_straight_through_gradient_is_one_over_vth_inside_the_window():
    v_th = 2.0
    lif = TernaryLIF(v_threshold=v_th)
    u = torch.tensor([-2.5, -1.5, -0.5, 0.3, 0.9, 1.9, 2.0, 2.1, 3.0]).view(1, 1, -1).requires_grad_()
    lif(u).sum().backward()
    expected = [0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0]  # 1/V_th where |u| <= V_th
    assert u.grad.view(-1).tolist() == expected


def test_gradients_flow_through_time_and_the_reset():
    lif = TernaryLIF(surrogate_function="sigmoid")
    current = torch.tensor([0.3, 0.2]).view(2, 1).requires_grad_()
    lif(current)[1].sum().backward()
    # s1 depends on I0 through the leak: dS1/dI0 = g(u1)·τ·(dr0/du0) != 0
    assert current.grad[0].item() != 0.0 and current.grad[1].item() > 0.0


@pytest.mark.parametrize("neuron", ["ternary", "binary"])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("surrogate", ["ste", "sigmoid", "atan"])
def test_fused_lif_equals_the_step_by_step_graph(neuron, detach_reset, surrogate):
    torch.manual_seed(0)
    lif = LIF(neuron=neuron, detach_reset=detach_reset, surrogate_function=surrogate, tau_shift=1)
    fused_in = (torch.randn(4, 6, 9) * 0.8).requires_grad_()
    step_in = fused_in.detach().clone().requires_grad_()
    weights = torch.randn(4, 6, 9)
    fused, step = lif.spikes(fused_in), lif.spikes_stepwise(step_in)
    (fused * weights).sum().backward()
    (step * weights).sum().backward()
    assert torch.equal(fused, step)
    torch.testing.assert_close(fused_in.grad, step_in.grad, atol=1e-6, rtol=1e-5)
    assert fused_in.grad.abs().sum() > 0


def test_mpbn_moves_the_thresholds_as_spec_folding_says():
    # gamma 2, beta 0, mean 0.125, var+eps = 1: bn(u) = 2(u - 0.125); fires +1 at u >= 0.375 (theta+),
    # -1 at u <= -0.125 (theta- = mu - (theta + beta)*g), SPEC §2.4 with g = sqrt(var+eps)/gamma = 1/2.
    lif = TernaryLIF(mpbn=1, mpbn_eps=1e-5)
    with torch.no_grad():
        lif.mpbn.weight.fill_(2.0)
        lif.mpbn.bias.fill_(0.0)
        lif.mpbn.running_mean.fill_(0.125)
        lif.mpbn.running_var.fill_(1.0 - 1e-5)
    lif.eval()
    u = torch.tensor([0.3751, 0.3749, -0.1249, -0.1251, 0.0]).view(1, 5, 1)  # [T=1, B=5, C=1]
    assert lif(u).view(-1).tolist() == [1.0, 0.0, 0.0, -1.0, 0.0]


def test_mpbn_leaks_the_membrane_not_the_normalised_value():
    lif = TernaryLIF(mpbn=1)
    with torch.no_grad():
        lif.mpbn.running_mean.fill_(0.0)
        lif.mpbn.running_var.fill_(1.0 - 1e-5)
        lif.mpbn.bias.fill_(0.25)  # bn(u) = u + 0.25: fires when u >= 0.25
    lif.eval()
    # u1 = 0.125/4 + 0.1875 = 0.21875 -> silent. Leaking bn(u0) = 0.375 instead would give
    # 0.09375 + 0.1875 = 0.28125 -> fire.
    assert lif(torch.tensor([0.125, 0.1875]).view(2, 1, 1)).view(-1).tolist() == [0.0, 0.0]
    assert lif(torch.tensor([0.125, 0.25]).view(2, 1, 1)).view(-1).tolist() == [0.0, 1.0]
    # after a spike the membrane restarts from 0: u1 = 0.125 -> silent
    assert lif(torch.tensor([0.375, 0.125]).view(2, 1, 1)).view(-1).tolist() == [1.0, 0.0]


def test_surrogates_by_name_and_their_derivatives():
    assert isinstance(get_surrogate(None), StraightThrough)
    assert isinstance(get_surrogate("sigmoid"), Sigmoid) and isinstance(get_surrogate("atan"), ATan)
    x = torch.tensor([0.0])
    assert Sigmoid(alpha=4.0).derivative(x, 1.0).item() == pytest.approx(1.0)  # alpha/4 at 0
    assert ATan(alpha=2.0).derivative(x, 1.0).item() == pytest.approx(1.0)     # alpha/2 at 0
    with pytest.raises(ValueError, match="alpha must be a finite number > 0, not -1"):
        Sigmoid(alpha=-1)
