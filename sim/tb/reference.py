"""Small integer reference for the testbenches: SPEC §4 written directly in numpy/int.

Kept deliberately tiny; gen.golden is the project's golden model (switch to it when it lands).
"""
from __future__ import annotations

import numpy as np


def lif_neuron(r_prev: int, current: int, t: int, theta_pos: int, theta_neg: int,
               leak_shift: int, kind: str) -> tuple[int, int]:
    """One neuron, one step: (spike in {-1, 0, 1}, R). `current` already includes the bias."""
    shift = leak_shift * t
    u = (0 if t == 0 else r_prev) + (current << shift)
    if u >= theta_pos << shift:
        s = 1
    elif kind == "ternary" and u <= theta_neg << shift:
        s = -1
    else:
        s = 0
    return s, (u if s == 0 else 0)


def project(geometry, weights: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Σ W ⋆ s with zero padding (no bias), int64, output flat in [O,H,W] order."""
    w = np.asarray(weights, dtype=np.int64)
    s = np.asarray(spikes, dtype=np.int64).reshape(-1)
    if not geometry.is_conv:
        return w @ s
    g = geometry
    x = s.reshape(g.in_channels, g.in_height, g.in_width)
    p = g.padding
    xp = np.zeros((g.in_channels, g.in_height + 2 * p, g.in_width + 2 * p), dtype=np.int64)
    xp[:, p:p + g.in_height, p:p + g.in_width] = x
    out = np.zeros((g.out_channels, g.out_height, g.out_width), dtype=np.int64)
    for ky in range(g.kernel):
        for kx in range(g.kernel):
            patch = xp[:, ky:ky + g.stride * g.out_height:g.stride, kx:kx + g.stride * g.out_width:g.stride]
            out += np.einsum("oc,chw->ohw", w[:, :, ky, kx], patch)
    return out.reshape(-1)


def signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def bits_signed(low: int, high: int) -> int:
    """Smallest two's complement width holding every integer in [low, high]."""
    width = 1
    while not (-(1 << (width - 1)) <= low and high <= (1 << (width - 1)) - 1):
        width += 1
    return width


def make_weights(shape, width: int, style: str, seed: int) -> np.ndarray:
    """Test weights: 'random' over the full signed range, 'extreme' only ±max/min."""
    rng = np.random.default_rng(seed)
    low, high = signed_range(width)
    if style == "extreme":
        return rng.choice(np.array([low, high], dtype=np.int64), size=shape)
    if style == "max":
        return np.full(shape, high, dtype=np.int64)
    return rng.integers(low, high + 1, size=shape, dtype=np.int64)


def make_geometry(spec: dict):
    """Geometry from a JSON-able dict {"kind": "conv"|"dense", ...fields}."""
    from hw.geometry import ConvGeometry, DenseGeometry
    fields = {k: v for k, v in spec.items() if k != "kind"}
    return ConvGeometry(**fields) if spec["kind"] == "conv" else DenseGeometry(**fields)


def current_bound(weights: np.ndarray, max_input: int) -> int:
    """max over outputs of Σ|W|·max|input|: what one step can add to one current."""
    w = np.abs(np.asarray(weights, dtype=np.int64)).reshape(weights.shape[0], -1)
    return int(w.sum(axis=1).max()) * max_input


def lane_words_to_map(words, lanes: int, positions: int) -> np.ndarray:
    """Sweep words (address g·positions + p, lane j) -> flat [O·positions] in PyTorch order."""
    groups = len(words) // positions
    out = np.zeros(groups * lanes * positions, dtype=np.int64)
    for addr, word in enumerate(words):
        g, p = divmod(addr, positions)
        for j, v in enumerate(word):
            out[(g * lanes + j) * positions + p] = v
    return out


def lif_layer(currents_per_step, bias, theta_pos, theta_neg, positions: int, leak_shift: int,
              kind: str):
    """SPEC §4 over T steps for one image: currents (without bias) per step -> spikes per step."""
    per_neuron = lambda v: np.repeat(np.asarray(v, dtype=np.int64), positions)
    b, thp, thn = per_neuron(bias), per_neuron(theta_pos), per_neuron(theta_neg)
    r = np.zeros(len(b), dtype=object)
    out = []
    for t, current in enumerate(currents_per_step):
        s = np.zeros(len(b), dtype=np.int64)
        for n in range(len(b)):
            s[n], r[n] = lif_neuron(int(r[n]), int(current[n]) + int(b[n]), t, int(thp[n]),
                                    int(thn[n]), leak_shift, kind)
        out.append(s)
    return out


def layer_parameters(geometry, p: dict):
    """Weights, bias and thresholds of a test layer, drawn from p's seeds and styles."""
    weights = make_weights(geometry.weight_shape, p["weight_width"], p["weight_style"], p["weight_seed"])
    rng = np.random.default_rng(p["weight_seed"] + 1)
    scale = max(1, current_bound(weights, 1) // 6)
    channels = geometry.out_channels
    bias = rng.integers(-scale // 4, scale // 4 + 1, size=channels)
    theta_pos = rng.integers(1, scale + 1, size=channels)
    theta_neg = -rng.integers(1, scale + 1, size=channels) if p.get("kind") != "binary" else -theta_pos
    return weights, bias, theta_pos, theta_neg


def layer_widths(weights, bias, theta_pos, theta_neg, leak_shift: int, steps: int, max_input: int = 1):
    """(current_width, membrane_width) wide enough for any input (what gen.bounds will do)."""
    bound = current_bound(weights, max_input)
    current_width = bits_signed(-bound, bound)
    b = int(np.abs(bias).max())
    th = int(max(np.abs(theta_pos).max(), np.abs(theta_neg).max()))
    # Binary neurons may sink below θ⁻ with no reset: bound |R| by the sum of all drives.
    r = ((bound + b) << (leak_shift * (steps - 1) + 1)) + (th << (leak_shift * (steps - 1)))
    return current_width, bits_signed(-r, r)
