"""The testbenches' scoreboard reference: gen.ir.golden (the project's golden model, SPEC §4)
adapted to hw geometries and lane layouts, plus test stimulus helpers."""
from __future__ import annotations

import numpy as np

from gen.ir import golden
from gen.ir import Conv2d, Dense
from hw.geometry import ConvGeometry, DenseGeometry


def ir_op(geometry):
    """The gen.ir projection op of an hw geometry."""
    if geometry.is_conv:
        return Conv2d(kernel=geometry.kernel, stride=geometry.stride, padding=geometry.padding)
    return Dense()


def project(geometry, weights: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Σ W ⋆ s with zero padding (no bias) by gen.ir.golden, int64, flat in [O,H,W] order."""
    g = geometry
    shape = (g.in_channels, g.in_height, g.in_width) if g.is_conv else (g.in_features,)
    x = np.asarray(spikes, dtype=np.int64).reshape((1,) + shape)
    return golden.project(ir_op(g), np.asarray(weights, dtype=np.int64), x).reshape(-1)


def lif_neuron(r_prev: int, current: int, t: int, theta_pos: int, theta_neg: int,
               leak_shift: int, kind: str) -> tuple[int, int]:
    """One neuron, one step, by gen.ir.golden.lif_step: (spike, R). `current` includes the bias.
    R_prev is taken as 0 at t = 0 (SPEC: R^-1 = 0)."""
    r = np.array([[0 if t == 0 else r_prev]], dtype=np.int64)
    s, r_next = golden.lif_step(r, np.array([[current]], dtype=np.int64), t, np.array([theta_pos]),
                                np.array([theta_neg]), leak_shift, kind)
    return int(s[0, 0]), int(r_next[0, 0])


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
    """SPEC §4 over T steps for one image (gen.ir.golden.lif_step): currents without bias,
    flat [O·positions] per step -> spikes per step."""
    channels = len(bias)
    b = np.asarray(bias, dtype=np.int64).reshape(1, channels, 1)
    r = np.zeros((1, channels, positions), dtype=np.int64)
    out = []
    for t, current in enumerate(currents_per_step):
        i = np.asarray(current, dtype=np.int64).reshape(1, channels, positions) + b
        s, r = golden.lif_step(r, i, t, np.asarray(theta_pos), np.asarray(theta_neg), leak_shift, kind)
        out.append(s.reshape(-1).astype(np.int64))
    return out


def layer_parameters(geometry, p: dict, max_input: int = 1):
    """Weights, bias and thresholds of a test layer, drawn from p's seeds and styles."""
    weights = make_weights(geometry.weight_shape, p["weight_width"], p["weight_style"], p["weight_seed"])
    rng = np.random.default_rng(p["weight_seed"] + 1)
    scale = max(1, current_bound(weights, max_input) // 6)
    channels = geometry.out_channels
    bias = rng.integers(-scale // 4, scale // 4 + 1, size=channels)
    theta_pos = rng.integers(1, scale + 1, size=channels)
    theta_neg = -rng.integers(1, scale + 1, size=channels) if p.get("kind") != "binary" else -theta_pos
    return weights, bias, theta_pos, theta_neg


def layer_widths(weights, bias, theta_pos, theta_neg, leak_shift: int, steps: int, max_input: int = 1):
    """(current_width, membrane_width) wide enough for any input (what gen.ir.bounds will do)."""
    bound = current_bound(weights, max_input)
    current_width = bits_signed(-bound, bound)
    b = int(np.abs(bias).max())
    th = int(max(np.abs(theta_pos).max(), np.abs(theta_neg).max()))
    # Binary neurons may sink below θ⁻ with no reset: bound |R| by the sum of all drives.
    r = ((bound + b) << (leak_shift * (steps - 1) + 1)) + (th << (leak_shift * (steps - 1)))
    return current_width, bits_signed(-r, r)
