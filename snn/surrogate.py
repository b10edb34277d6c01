"""Surrogate gradients for the spike's step function.

A spike is a Heaviside step H(x) of x = u − θ (ties fire: H(0) = 1). Its true derivative is
zero almost everywhere, so training replaces it by a surrogate g(x). Each surrogate here is a
callable `surrogate(x, v_threshold)` returning H(x) with g(x) as its gradient; the width of g
scales with V_th so that a model keeps its behaviour when V_th changes.

The ternary spike is H(u − θ) − H(−u − θ); its surrogate derivative is g(u − θ) + g(−u − θ).
With the default `StraightThrough` (the Ternary-Spike authors' released code) that sum is
1/V_th where |u| ≤ V_th and 0 elsewhere (2/V_th at the single point u = 0, where the two
windows touch).
"""
from __future__ import annotations

import math

import torch


class _Heaviside(torch.autograd.Function):
    """Forward: H(x) = 1 if x >= 0 else 0. Backward: grad · surrogate.derivative(x)."""

    @staticmethod
    def forward(ctx, x, surrogate, v_threshold):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        ctx.v_threshold = v_threshold
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x, ctx.v_threshold), None, None


class Surrogate:
    """Base class: subclasses define `derivative(x, v_threshold)`."""

    name = "surrogate"

    def __call__(self, x: torch.Tensor, v_threshold: float = 1.0) -> torch.Tensor:
        return _Heaviside.apply(x, self, float(v_threshold))

    def derivative(self, x: torch.Tensor, v_threshold: float) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, not {alpha!r}")
    return float(alpha)


class StraightThrough(Surrogate):
    """Rectangular window: g(x) = 1/V_th where |x| ≤ V_th/2 (the released Ternary-Spike code)."""

    name = "ste"

    def derivative(self, x, v_threshold):
        return (x.abs() <= 0.5 * v_threshold).to(x.dtype) / v_threshold


class Sigmoid(Surrogate):
    """g(x) = α'·σ(α'x)·(1 − σ(α'x)) with α' = α/V_th (SpikingJelly's `Sigmoid`, α = 4)."""

    name = "sigmoid"

    def __init__(self, alpha: float = 4.0):
        self.alpha = _check_alpha(alpha)

    def derivative(self, x, v_threshold):
        a = self.alpha / v_threshold
        sig = torch.sigmoid(a * x)
        return a * sig * (1 - sig)

    def __repr__(self) -> str:
        return f"Sigmoid(alpha={self.alpha})"


class ATan(Surrogate):
    """g(x) = (α'/2) / (1 + (π/2·α'·x)²) with α' = α/V_th (SpikingJelly's `ATan`, α = 2)."""

    name = "atan"

    def __init__(self, alpha: float = 2.0):
        self.alpha = _check_alpha(alpha)

    def derivative(self, x, v_threshold):
        a = self.alpha / v_threshold
        return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)

    def __repr__(self) -> str:
        return f"ATan(alpha={self.alpha})"


SURROGATES = {"ste": StraightThrough, "sigmoid": Sigmoid, "atan": ATan}


def get_surrogate(surrogate: "str | Surrogate | None") -> Surrogate:
    """A surrogate from its name ('ste', 'sigmoid', 'atan'), an instance, or None (the default STE)."""
    if surrogate is None:
        return StraightThrough()
    if isinstance(surrogate, Surrogate):
        return surrogate
    if isinstance(surrogate, str) and surrogate in SURROGATES:
        return SURROGATES[surrogate]()
    raise ValueError(f"surrogate_function must be one of {sorted(SURROGATES)} or a Surrogate, not {surrogate!r}")
