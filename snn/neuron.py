"""Ternary and binary LIF neurons, multi-step, exactly as SPEC §1.

    u_t = τ·r_{t−1} + I_t                 τ = 2^−k, r_{−1} = 0
    s_t = +1 if v_t ≥ θ, −1 if v_t ≤ −θ (ternary only), else 0      θ = V_th / 2
    r_t = u_t·(1 − |s_t|)                 hard reset to 0 after a spike of either sign
    out = a·s_t                           a: optional learned amplitude (scalar, init 1)

with v_t = u_t, or v_t = MPBN(u_t) when a BatchNorm on the membrane is used (MPBN): the leak
and the reset still act on u, only the firing decision sees the normalised value.

Arguments follow SpikingJelly where they mean the same thing (`v_threshold`,
`surrogate_function`, `detach_reset`, `step_mode`); `tau` here is the leak factor 2^−k that
multiplies the membrane, not SpikingJelly's time constant.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .arch import MAX_TAU_SHIFT, NEURONS
from .surrogate import StraightThrough, Surrogate, get_surrogate


def tau_shift_from(tau=None, tau_shift=None) -> int:
    """The leak shift k (τ = 2^−k) from either argument; default k = 2 (τ = 1/4, the paper's)."""
    if tau_shift is not None:
        if not isinstance(tau_shift, int) or isinstance(tau_shift, bool) or not 0 <= tau_shift <= MAX_TAU_SHIFT:
            raise ValueError(f"tau_shift must be an int in [0, {MAX_TAU_SHIFT}], not {tau_shift!r}")
    if tau is None:
        return 2 if tau_shift is None else tau_shift
    ok = isinstance(tau, (int, float)) and not isinstance(tau, bool) and 0 < tau <= 1
    k = -math.log2(tau) if ok else None
    if not ok or k != int(k) or k > MAX_TAU_SHIFT:
        raise ValueError(f"tau must be a power of two 2^-k with k in [0, {MAX_TAU_SHIFT}] "
                         f"(the leak factor, e.g. 0.25; not SpikingJelly's time constant), not {tau!r}")
    if tau_shift is not None and tau_shift != int(k):
        raise ValueError(f"tau and tau_shift must agree (tau = 2^-tau_shift), not {tau!r} and {tau_shift!r}")
    return int(k)


class _FusedLIF(torch.autograd.Function):
    """The whole multi-step LIF (no MPBN) in one autograd node: same values and gradients as
    the step-by-step graph, a few times fewer elementwise passes over memory (they dominate
    training time on a CPU). Saves only the membranes u_t; spikes are recomputed."""

    @staticmethod
    def forward(ctx, current, tau, theta, v_threshold, ternary, surrogate, detach_reset):
        membranes, spikes = [], []
        r = None
        for t in range(current.shape[0]):
            u = current[t] if r is None else torch.add(current[t], r, alpha=tau)
            s = _fire_values(u, theta, ternary)
            membranes.append(u)
            spikes.append(s)
            r = u * (s == 0)
        ctx.save_for_backward(torch.stack(membranes))
        ctx.params = (tau, theta, v_threshold, ternary, surrogate, detach_reset)
        return torch.stack(spikes)

    @staticmethod
    def backward(ctx, grad_spikes):
        (membranes,) = ctx.saved_tensors
        tau, theta, v_threshold, ternary, surrogate, detach_reset = ctx.params
        if isinstance(surrogate, StraightThrough):
            grad = _straight_through_backward(membranes, grad_spikes, tau, theta, v_threshold, ternary, detach_reset)
            return grad, None, None, None, None, None, None
        grad_current = torch.empty_like(membranes)
        grad_r = None  # dL/dr_t flowing back from step t+1
        for t in reversed(range(membranes.shape[0])):
            u = membranes[t]
            g_pos = surrogate.derivative(u - theta, v_threshold)
            g_neg = surrogate.derivative(-u - theta, v_threshold) if ternary else None
            grad_u = grad_spikes[t] * (g_pos + g_neg if ternary else g_pos)
            if grad_r is not None:
                # r = u·(1 − |s|). As autograd differentiates it in the step-by-step graph:
                # d|s|/du = sign(s)·(g_pos + g_neg) for ternary (abs has derivative sign(s),
                # 0 when silent), g_pos for binary (written 1 − s, as SpikingJelly does).
                s = _fire_values(u, theta, ternary)
                silent = (s == 0).to(u.dtype)
                if detach_reset:
                    dr_du = silent
                else:
                    dabs_du = s * (g_pos + g_neg) if ternary else g_pos
                    dr_du = silent - u * dabs_du
                grad_u = grad_u + grad_r * dr_du
            grad_current[t] = grad_u
            grad_r = tau * grad_u
        return grad_current, None, None, None, None, None, None


def _straight_through_backward(membranes, grad_spikes, tau, theta, v_threshold, ternary, detach_reset):
    """`_FusedLIF.backward` for the default surrogate in fewer passes over memory.

    In real arithmetic g(u − θ) + g(−u − θ) = [|u| ≤ V_th]/V_th for the ternary neuron (off by
    the single point u = 0) and g(u − θ) = [0 ≤ u ≤ V_th]/V_th for the binary one.
    """
    inv = 1.0 / v_threshold
    grad_current = torch.empty_like(membranes)
    grad_r = None
    for t in reversed(range(membranes.shape[0])):
        u = membranes[t]
        if ternary:
            magnitude = u.abs()
            window = magnitude <= v_threshold
            silent = magnitude < theta
        else:
            window = (u >= 0) & (u <= v_threshold)
            silent = u < theta
        grad_u = grad_spikes[t] * window * inv
        if grad_r is not None:
            if detach_reset:
                dr_du = silent
            elif ternary:
                # fired: u·s = |u|, so dr/du = −|u|·window/V_th; silent: 1
                dr_du = torch.where(silent, 1.0, magnitude * window * -inv)
            else:
                dr_du = silent.to(u.dtype) - u * window * inv
            grad_u = grad_u + grad_r * dr_du
        grad_current[t] = grad_u
        grad_r = grad_u * tau
    return grad_current


def _fire_values(u: torch.Tensor, theta: float, ternary: bool) -> torch.Tensor:
    """Spike values without gradient: ties fire (u ≥ θ → +1, u ≤ −θ → −1)."""
    if ternary:
        return torch.sign(u) * (u.abs() >= theta)
    return (u >= theta).to(u.dtype)


class LIF(nn.Module):
    """Multi-step LIF neuron on tensors [T, B, ...]; `neuron` is 'ternary' or 'binary'.

    `mpbn` is the number of channels (dimension 2 of the input) for a BatchNorm on the
    membrane, or None for none.
    """

    def __init__(self, neuron: str = "ternary", tau: float | None = None, tau_shift: int | None = None,
                 v_threshold: float = 1.0, surrogate_function: "str | Surrogate | None" = None,
                 detach_reset: bool = False, amplitude: bool = False, mpbn: int | None = None,
                 mpbn_eps: float = 1e-5, v_reset: float = 0.0, step_mode: str = "m"):
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"neuron must be one of {list(NEURONS)}, not {neuron!r}")
        if (isinstance(v_threshold, bool) or not isinstance(v_threshold, (int, float))
                or not math.isfinite(v_threshold) or v_threshold <= 0):
            raise ValueError(f"v_threshold must be a finite number > 0, not {v_threshold!r}")
        if v_reset != 0.0:
            raise ValueError(f"v_reset must be 0.0 (Tern neurons reset hard to 0), not {v_reset!r}")
        if step_mode != "m":
            raise ValueError(f"step_mode must be 'm' (multi-step tensors [T, B, ...]), not {step_mode!r}")
        for flag, value in (("detach_reset", detach_reset), ("amplitude", amplitude)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, not {value!r}")
        if mpbn is not None and (not isinstance(mpbn, int) or isinstance(mpbn, bool) or mpbn < 1):
            raise ValueError(f"mpbn must be None or a number of channels >= 1, not {mpbn!r}")
        self.neuron = neuron
        self.tau_shift = tau_shift_from(tau, tau_shift)
        self.tau = 2.0 ** -self.tau_shift
        self.v_threshold = float(v_threshold)
        self.surrogate_function = get_surrogate(surrogate_function)
        self.detach_reset = detach_reset
        self.step_mode = step_mode
        self.amplitude = nn.Parameter(torch.tensor(1.0)) if amplitude else None
        self.mpbn = nn.BatchNorm1d(mpbn, eps=mpbn_eps) if mpbn is not None else None

    @property
    def theta(self) -> float:
        """The firing threshold θ = V_th / 2 (SPEC §1)."""
        return 0.5 * self.v_threshold

    def extra_repr(self) -> str:
        return (f"neuron={self.neuron!r}, tau=2^-{self.tau_shift}, v_threshold={self.v_threshold}, "
                f"surrogate_function={self.surrogate_function!r}, detach_reset={self.detach_reset}")

    def _membrane_for_firing(self, u: torch.Tensor) -> torch.Tensor:
        if self.mpbn is None:
            return u
        # BatchNorm1d over [B, C, L] normalises per channel over batch and positions, as BN2d would.
        flat = u.reshape(u.shape[0], u.shape[1], -1)
        return self.mpbn(flat).reshape(u.shape)

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        """Spikes s ∈ {−1, 0, 1} (ternary) or {0, 1} (binary) of the (normalised) membrane v."""
        positive = self.surrogate_function(v - self.theta, self.v_threshold)
        if self.neuron == "binary":
            return positive
        return positive - self.surrogate_function(-v - self.theta, self.v_threshold)

    def spikes(self, current: torch.Tensor) -> torch.Tensor:
        """The raw spike train s [T, B, ...] (no amplitude) for input currents [T, B, ...]."""
        if current.dim() < 2:
            raise ValueError(f"input must be a multi-step tensor [T, B, ...], not shape {tuple(current.shape)}")
        if self.mpbn is not None:
            return self.spikes_stepwise(current)
        return _FusedLIF.apply(current, self.tau, self.theta, self.v_threshold, self.neuron == "ternary",
                               self.surrogate_function, self.detach_reset)

    def spikes_stepwise(self, current: torch.Tensor) -> torch.Tensor:
        """The same as `spikes`, written step by step with autograd (the reference; used for MPBN)."""
        r = torch.zeros_like(current[0])
        out = []
        for t in range(current.shape[0]):
            u = self.tau * r + current[t]
            s = self.fire(self._membrane_for_firing(u))
            fired = s.abs() if self.neuron == "ternary" else s
            fired = fired.detach() if self.detach_reset else fired
            r = u * (1 - fired)
            out.append(s)
        return torch.stack(out)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        s = self.spikes(current)
        return s if self.amplitude is None else self.amplitude * s


class TernaryLIF(LIF):
    """LIF neuron with spikes in {−1, 0, +1} (Ternary Spike, AAAI 2024)."""

    def __init__(self, **kwargs):
        super().__init__(neuron="ternary", **kwargs)


class BinaryLIF(LIF):
    """LIF neuron with spikes in {0, 1}, for comparison."""

    def __init__(self, **kwargs):
        super().__init__(neuron="binary", **kwargs)
