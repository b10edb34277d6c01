"""Converted neurons (docs/msat.md): IF with subtract reset, and MSAT's adaptive-threshold IF.

Both run on multi-step currents [T, B, ...] of a layer whose weights are already normalised
by the layer's calibrated λ (so the constant threshold is 1), and return spike values and
amplitudes. The threshold rules:

* `IFSubtract`: U = R + I; s = +1 if U ≥ 1/2, −1 if (signed) U ≤ −1/2 and the neuron has
  emitted more +1 than −1 so far; R = U − s. Amplitude 1.
* `MSATNeuron`, rule "sigmoid" (the authors' SNode, in normalised units): θ(0) = 1; for t ≥ 1
  θ(t) = σ(DTT + DET), DTT = τ_mp·[α·λd − λ + k_a·ln(1 + e^{λd/k_i})], d = R(t−1) − mean of
  R(0..t−1), DET = τ_rd·e^{−λI(t)/C}; s = [U ≥ θ]; R = U − s·θ; amplitude θ.
* `MSATNeuron`, rule "ladder" (Tern's integer variant): θ = 2^−m, m = #{j : z < Z_j},
  z = LUT_d[q(d)] + LUT_x[q(I)] (integer tables from `ladder_tables`), m = 0 at t = 0.

`ladder_tables` is pure numpy: the compiler (gen) builds the IR's tables with it, so the
float model here and the integer golden model read the same numbers.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


# --------------------------------------------------------------------------- the threshold functions


def dtt_value(d_abs, fields: dict, softplus, lam: float):
    """τ_mp·[α·d − λ + k_a·ln(1 + e^{d/k_i})] (authors' code: V_T = −λ), d in ANN units."""
    return fields["tau_mp"] * (fields["alpha"] * d_abs - lam + fields["ka"] * softplus(d_abs / fields["ki"]))


def det_value(x_abs, fields: dict, exp):
    """τ_rd·e^{−x/C}, x the input current of this step in ANN units (authors' code; not eq. 13)."""
    return fields["tau_rd"] * exp(-x_abs / fields["C"])


def _np_softplus(y):
    return np.logaddexp(0.0, y)


def ladder_tables(fields: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lut_d [2H], lut_x [2H], ladder_z [M]) int64 for an msat layer dict (docs/msat.md §3).

    Cell i of a table covers normalised values [(i − H)/2^b, (i − H + 1)/2^b) (b = d_bits or
    x_bits, H = lut_half); the entry is the function at the cell's centre in fixed point with
    z_bits fractional bits, rounded half to even. Z_j = round(logit(2^(−j+1/2))·2^z_bits): the
    logit of the geometric midpoint between ladder steps j−1 and j.
    """
    half, lam, scale = fields["lut_half"], fields["lambda"], 2.0 ** fields["z_bits"]
    cells = np.arange(2 * half, dtype=np.float64) - half + 0.5
    d_abs = lam * cells / 2.0 ** fields["d_bits"]
    x_abs = lam * cells / 2.0 ** fields["x_bits"]
    lut_d = dtt_value(d_abs, fields, _np_softplus, lam) if fields["use_dtt"] else np.zeros(2 * half)
    with np.errstate(over="ignore"):
        lut_x = det_value(x_abs, fields, np.exp) if fields["use_det"] else np.zeros(2 * half)
    # Far-negative inputs make e^{−x/C} huge: clip to what any threshold comparison can tell apart.
    limit = 2.0 ** 40
    lut_d = np.clip(np.round(lut_d * scale), -limit, limit).astype(np.int64)
    lut_x = np.clip(np.round(lut_x * scale), -limit, limit).astype(np.int64)
    steps = np.arange(1, fields["ladder_steps"] + 1, dtype=np.float64)
    p = 2.0 ** (-steps + 0.5)
    ladder_z = np.round(np.log(p / (1 - p)) * scale).astype(np.int64)
    return lut_d, lut_x, ladder_z


def ladder_index(z: torch.Tensor, ladder_z: torch.Tensor) -> torch.Tensor:
    """m = #{j : z < Z_j} (Z_j decreasing: a larger z gives a larger threshold, a smaller m)."""
    return (z.unsqueeze(-1) < ladder_z).sum(-1)


def cell_index(value: torch.Tensor, bits: int, half: int, divisor: int = 1) -> torch.Tensor:
    """clamp(floor(value·2^bits / divisor) + H, 0, 2H − 1): the table cell of a normalised value.

    The mean's deviation d = R − S/t enters as value = t·R − S, divisor = t, so that no
    rounded quotient S/t is ever formed (docs/msat.md §3).
    """
    return (torch.floor(value * 2.0 ** bits / divisor).long() + half).clamp(0, 2 * half - 1)


# --------------------------------------------------------------------------- neurons


class ConvertedNeuron(nn.Module):
    """A neuron of a converted network; `spikes(current)` -> (s, amplitude), both [T, B, ...]."""

    def __init__(self, fields: dict):
        super().__init__()
        self.fields = dict(fields)

    def spikes(self, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        s, amplitude = self.spikes(current)
        return s * amplitude


class IFSubtract(ConvertedNeuron):
    """IF, subtract reset, fires at ±1/2 of its amplitude 1; a −1 only to correct earlier +1s."""

    def spikes(self, current):
        r = torch.zeros_like(current[0])
        balance = torch.zeros_like(current[0])  # (+1 spikes) − (−1 spikes) so far
        out = []
        for t in range(current.shape[0]):
            u = r + current[t]
            s = (u >= 0.5).to(u.dtype)
            if self.fields["signed"]:
                s = s - ((u <= -0.5) & (balance > 0)).to(u.dtype)
            r = u - s
            balance = balance + s
            out.append(s)
        s = torch.stack(out)
        return s, torch.ones_like(s)


class MSATNeuron(ConvertedNeuron):
    """MSAT's adaptive-threshold IF (rule 'sigmoid': the authors' code; 'ladder': Tern's)."""

    def __init__(self, fields: dict):
        super().__init__(fields)
        if fields["rule"] == "ladder":
            lut_d, lut_x, ladder_z = ladder_tables(fields)
            self.register_buffer("lut_d", torch.from_numpy(lut_d), persistent=False)
            self.register_buffer("lut_x", torch.from_numpy(lut_x), persistent=False)
            self.register_buffer("ladder_z", torch.from_numpy(ladder_z), persistent=False)

    def _threshold(self, t: int, r: torch.Tensor, total: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        f, lam = self.fields, self.fields["lambda"]
        if f["rule"] == "constant":   # the ablation's baseline: θ = λ at every step
            return torch.ones_like(x)
        if f["rule"] == "ladder":
            z = (self.lut_d[cell_index(t * r - total, f["d_bits"], f["lut_half"], t)]
                 + self.lut_x[cell_index(x, f["x_bits"], f["lut_half"])])
            return 2.0 ** -ladder_index(z, self.ladder_z).to(x.dtype)
        d = r - total / t
        z = torch.zeros_like(x)
        if f["use_dtt"]:
            z = z + dtt_value(lam * d, f, nn.functional.softplus, lam)
        if f["use_det"]:
            z = z + det_value(lam * x, f, torch.exp)
        return torch.sigmoid(z)

    def spikes(self, current):
        # half_start: the membrane starts at θ(0)/2 (Tern's choice, docs/msat.md §3b; the authors'
        # code has it commented out): the first spikes round instead of flooring.
        r = torch.full_like(current[0], 0.5 if self.fields.get("half_start") else 0.0)
        total = torch.zeros_like(current[0])  # Σ of the post-reset membranes so far
        out, amplitudes = [], []
        for t in range(current.shape[0]):
            x = current[t]
            u = r + x
            if t == 0:
                theta = torch.ones_like(x)
            else:
                theta = self._threshold(t, r, total, x)
            s = (u >= theta).to(u.dtype)
            r = u - s * theta
            total = total + r
            out.append(s)
            amplitudes.append(theta)
        return torch.stack(out), torch.stack(amplitudes)
