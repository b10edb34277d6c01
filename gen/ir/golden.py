"""The golden model: SPEC §4 in integer numpy (no torch; no rounding anywhere).

All values are int64. The only floats are inside `int_matmul`/`project`, where BLAS adds
integers in float32/float64 only when a bound proves every partial sum is exactly
representable (see gen.ops.arith.USE_EXACT_FLOAT_MATMUL): the results are the int64
results, bit for bit. Each op's projection and fan-out is its entry in gen.ops.

The hardware is correct iff its spikes and logits equal what `run` returns. The two
primitives `project` and `lif_step` are vectorised over a batch and are what the
hardware testbenches reuse as their scoreboards.

    U^t = R^{t-1} + (I^t << k·t),  R^{-1} = 0
    s^t = +1 if U^t >= θ⁺<<k·t;  -1 if U^t <= θ⁻<<k·t (ternary only);  else 0
    R^t = U^t if s^t == 0 else 0
    readout: logits = Σ_t I^t;  class = smallest index of the maximum
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from gen.ir.bounds import check_fits_int64
from gen.ir import CONVERTED_NEURONS, INPUT, Layer, Network
from gen.ops import op_spec
from gen.ops.arith import exact_dtype, int_matmul, max_abs  # noqa: F401 (the golden model's public primitives)

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 256  # images per vectorised pass: bounds the im2col memory


# --------------------------------------------------------------------------- primitives


def project(op, weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Currents into a layer from one projection, without bias: W ⋆ x (the op's gen.ops entry).

    x: int [N, *source shape] (spikes in {-1, 0, 1} or uint8 pixels); returns int64 [N, *out shape].
    """
    spec = op_spec(op)
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"x must be an integer array, not dtype {x.dtype}")
    return spec.project(op, np.asarray(weight, dtype=np.int64), x)


def _per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape((1, -1) + (1,) * (ndim - 2))


def lif_step(R_prev: np.ndarray, I: np.ndarray, t: int, theta_pos: np.ndarray, theta_neg: np.ndarray | None,
             leak_shift: int, neuron: str) -> tuple[np.ndarray, np.ndarray]:
    """One timestep of a layer of integer LIF neurons (SPEC §4); arrays are [N, C, ...].

    Returns (s int8, R int64). `theta_neg` is ignored for binary neurons.
    """
    shift = leak_shift * t
    U = np.asarray(R_prev, dtype=np.int64) + (np.asarray(I, dtype=np.int64) << shift)
    pos = U >= (_per_channel(theta_pos, U.ndim) << shift)
    if neuron == "ternary":
        neg = U <= (_per_channel(theta_neg, U.ndim) << shift)
        s = pos.astype(np.int8) - (neg & ~pos).astype(np.int8)
    elif neuron == "binary":
        s = pos.astype(np.int8)
    else:
        raise ValueError(f"neuron must be 'ternary' or 'binary', not {neuron!r}")
    R = np.where(s == 0, U, 0)
    return s, R


def if_subtract_step(R_prev: np.ndarray, n_prev: np.ndarray, I: np.ndarray, layer: Layer):
    """IF with subtract reset and signed correction (docs/msat.md §3a): (s int8, R, n).

    U = R + I; s = +1 if U ≥ θ⁺, −1 if signed and U ≤ θ⁻ and n > 0, else 0; R = U − s·A; n += s.
    """
    U = np.asarray(R_prev, dtype=np.int64) + np.asarray(I, dtype=np.int64)
    pos = U >= _per_channel(layer.theta_pos, U.ndim)
    s = pos.astype(np.int8)
    if layer.tables.signed:
        s -= ((U <= _per_channel(layer.theta_neg, U.ndim)) & (n_prev > 0) & ~pos).astype(np.int8)
    R = U - s.astype(np.int64) * _per_channel(layer.tables.amplitude, U.ndim)
    return s, R, n_prev + s


def _floor_shift(value: np.ndarray, divisor: int, shift: np.ndarray) -> np.ndarray:
    """⌊value / (divisor·2^shift)⌋ per channel, exactly (a negative shift multiplies)."""
    left = np.maximum(-shift, 0)
    right = np.maximum(shift, 0)
    return np.floor_divide(value << left, divisor << right)


def msat_ladder_index(R_prev: np.ndarray, S_prev: np.ndarray, I: np.ndarray, t: int, layer: Layer) -> np.ndarray:
    """m^t of docs/msat.md §3b: 0 at t = 0, else #{j : LUT_d[i_d] + LUT_x[i_x] < Z_j}."""
    if t == 0:
        return np.zeros(np.shape(I), np.int64)
    tables, ndim = layer.tables, np.ndim(I)
    h = tables.lut_half
    N = t * np.asarray(R_prev, dtype=np.int64) - np.asarray(S_prev, dtype=np.int64)
    i_d = np.clip(_floor_shift(N, t, _per_channel(tables.d_shift, ndim)) + h, 0, 2 * h - 1)
    i_x = np.clip(_floor_shift(np.asarray(I, dtype=np.int64), 1, _per_channel(tables.x_shift, ndim)) + h, 0, 2 * h - 1)
    z = tables.lut_d[i_d] + tables.lut_x[i_x]
    return (z[..., None] < tables.ladder_z).sum(-1).astype(np.int64)


def msat_step(R_prev: np.ndarray, S_prev: np.ndarray, I: np.ndarray, t: int, layer: Layer):
    """Adaptive IF on the ladder Θ >> m (docs/msat.md §3b): (s int8, m int8, R, S)."""
    m = msat_ladder_index(R_prev, S_prev, I, t, layer)
    U = np.asarray(R_prev, dtype=np.int64) + np.asarray(I, dtype=np.int64)
    theta = _per_channel(layer.theta_pos, U.ndim) >> m
    s = (U >= theta).astype(np.int8)
    R = U - s.astype(np.int64) * theta
    return s, m.astype(np.int8), R, S_prev + R


def initial_residual(layer: Layer, n: int) -> np.ndarray:
    """R^{-1}: 0, or Θ >> 1 for an msat layer with half_start (docs/msat.md §3b)."""
    R = np.zeros((n,) + layer.shape, np.int64)
    if layer.tables is not None and layer.tables.half_start:
        R += _per_channel(layer.theta_pos >> 1, R.ndim)
    return R


def spike_values(layer: Layer, s: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    """What the next layer's synapses multiply: s, or s << (M − m) for an msat layer (its events carry m)."""
    if layer.neuron != "msat":
        return s
    return s.astype(np.int64) << (layer.tables.ladder_steps - m.astype(np.int64))


def membrane(R_prev: np.ndarray, I: np.ndarray, t: int, leak_shift: int) -> np.ndarray:
    """U^t before firing (what `lif_step` compares with the thresholds)."""
    return np.asarray(R_prev, dtype=np.int64) + (np.asarray(I, dtype=np.int64) << (leak_shift * t))


def layer_currents(layer: Layer, sources: dict[str, np.ndarray]) -> np.ndarray:
    """I = b + Σ_projections W ⋆ s_source, int64 [N, *layer.shape]."""
    n = next(iter(sources.values())).shape[0]
    current = np.broadcast_to(_per_channel(layer.bias, len(layer.shape) + 1), (n,) + layer.shape).copy()
    for p in layer.projections:
        current += project(p.op, p.weight, sources[p.source])
    return current


# --------------------------------------------------------------------------- synaptic-operation counts


def fanout(op, weight: np.ndarray, source_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray:
    """Synapses leaving each source neuron through this projection (border clipping counted)."""
    return op_spec(op).fanout(op, weight, tuple(source_shape), tuple(out_shape))


# --------------------------------------------------------------------------- whole network


@dataclass
class GoldenResult:
    """Integer outputs of `run`. Recorded maps are keyed by layer name.

    logits int64 [N, K]; classes int64 [N];
    spikes[layer] int8 [N, T, *shape] (spiking layers); events[layer] int64 [N, T] (non-zero spikes);
    sops[layer] int64 [N, T]: synaptic operations into that layer (events of its sources × fan-out);
    membranes[layer] int64 [N, T, *shape]: U^t before firing (only with record_membranes);
    ladders[layer] int8 [N, T, *shape]: the ladder index m^t of every msat neuron (docs/msat.md).
    """
    logits: np.ndarray
    classes: np.ndarray
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    events: dict[str, np.ndarray] = field(default_factory=dict)
    sops: dict[str, np.ndarray] = field(default_factory=dict)
    membranes: dict[str, np.ndarray] = field(default_factory=dict)
    ladders: dict[str, np.ndarray] = field(default_factory=dict)


def check_images(net: Network, images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8 pixels, not dtype {images.dtype}")
    if images.ndim != 4 or images.shape[1:] != net.input_shape:
        raise ValueError(f"images must have shape [N, {', '.join(map(str, net.input_shape))}], not {list(images.shape)}")
    return images


def _run_chunk(net: Network, images: np.ndarray, record: bool, record_membranes: bool, fanouts: dict):
    n, T = images.shape[0], net.timesteps
    encoding = net.layers[0]
    # Direct encoding: the pixels are the same at every step, so the first current is too.
    encoding_current = layer_currents(encoding, {INPUT: images})
    residual = {layer.name: initial_residual(layer, n) for layer in net.layers[:-1]}
    logits = np.zeros((n, net.num_classes), np.int64)
    spikes = {layer.name: np.zeros((n, T) + layer.shape, np.int8) for layer in net.layers[:-1]} if record else {}
    membranes = {layer.name: np.zeros((n, T) + layer.shape, np.int64) for layer in net.layers[:-1]} if record_membranes else {}
    sops = {layer.name: np.zeros((n, T), np.int64) for layer in net.layers} if record else {}
    # The second state of a converted neuron: the balance n (if_subtract) or the sum S (msat).
    extra = {layer.name: np.zeros((n,) + layer.shape, np.int64) for layer in net.layers[:-1]
             if layer.neuron in CONVERTED_NEURONS}
    ladders = {layer.name: np.zeros((n, T) + layer.shape, np.int8) for layer in net.layers[:-1]
               if layer.neuron == "msat"} if record else {}
    for t in range(T):
        step = {}
        fired = {}
        for layer in net.layers:
            if layer.kind == "encoding":
                current = encoding_current
            else:
                current = layer_currents(layer, step)
                if record:
                    for i, p in enumerate(layer.projections):
                        sops[layer.name][:, t] += (np.abs(fired[p.source]).reshape(n, -1).astype(np.int64)
                                                   @ fanouts[layer.name, i].reshape(-1))
            if layer.kind == "readout":
                logits += current
                continue
            if record_membranes:
                membranes[layer.name][:, t] = membrane(residual[layer.name], current, t, layer.leak_shift)
            m = None
            if layer.neuron == "if_subtract":
                s, residual[layer.name], extra[layer.name] = if_subtract_step(
                    residual[layer.name], extra[layer.name], current, layer)
            elif layer.neuron == "msat":
                s, m, residual[layer.name], extra[layer.name] = msat_step(
                    residual[layer.name], extra[layer.name], current, t, layer)
                if record:
                    ladders[layer.name][:, t] = m
            else:
                s, residual[layer.name] = lif_step(residual[layer.name], current, t, layer.theta_pos,
                                                   layer.theta_neg, layer.leak_shift, layer.neuron)
            step[layer.name] = spike_values(layer, s, m)
            fired[layer.name] = s
            if record:
                spikes[layer.name][:, t] = s
    return logits, spikes, sops, membranes, ladders


def run(net: Network, images, record: bool = False, record_membranes: bool = False,
        chunk: int = DEFAULT_CHUNK, progress=None) -> GoldenResult:
    """Run the integer network on uint8 images [N, C, H, W].

    `progress`: an optional callable(n_done) invoked after each chunk (the CLI passes tqdm's update).
    """
    check_fits_int64(net)
    images = check_images(net, images)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, not {chunk!r}")
    fanouts = {}
    if record:
        for layer in net.layers[1:]:
            for i, p in enumerate(layer.projections):
                fanouts[layer.name, i] = fanout(p.op, p.weight, net.source_shape(p.source), layer.shape)
    parts = []
    for start in range(0, images.shape[0], chunk):
        parts.append(_run_chunk(net, images[start:start + chunk], record, record_membranes, fanouts))
        if progress is not None:
            progress(min(chunk, images.shape[0] - start))
    if not parts:
        parts = [_run_chunk(net, images, record, record_membranes, fanouts)]
    logits = np.concatenate([p[0] for p in parts])
    result = GoldenResult(logits=logits, classes=np.argmax(logits, axis=1).astype(np.int64))
    if record:
        result.spikes = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
        result.events = {k: np.count_nonzero(v.reshape(v.shape[0], v.shape[1], -1), axis=2).astype(np.int64)
                         for k, v in result.spikes.items()}
        result.sops = {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]}
        result.ladders = {k: np.concatenate([p[4][k] for p in parts]) for k in parts[0][4]}
    if record_membranes:
        result.membranes = {k: np.concatenate([p[3][k] for p in parts]) for k in parts[0][3]}
    return result


def classify(net: Network, images) -> np.ndarray:
    """The class per image (smallest index of the maximum logit)."""
    return run(net, images).classes
