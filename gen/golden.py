"""The golden model: SPEC §4 in integer numpy (no torch; no rounding anywhere).

All values are int64. The only floats are inside `int_matmul`/`project`, where BLAS adds
integers in float32/float64 only when a bound proves every partial sum is exactly
representable (see USE_EXACT_FLOAT_MATMUL): the results are the int64 results, bit for bit.

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
from numpy.lib.stride_tricks import sliding_window_view

from .ir import INPUT, Conv2d, Dense, Identity, Layer, Network

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 256  # images per vectorised pass: bounds the im2col memory


# --------------------------------------------------------------------------- primitives


def _pad(x: np.ndarray, padding: int, pad_value: tuple[int, ...]) -> np.ndarray:
    """Pad [N, C, H, W] spatially with a per-channel constant (zeros when pad_value is ())."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
    if pad_value:
        out[:] = np.asarray(pad_value, dtype=x.dtype).reshape(1, c, 1, 1)
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out


# Integer matrix products through BLAS when that is provably exact. With K terms per sum,
# every product and partial sum is an integer of magnitude <= K·max|x|·max|W|. IEEE float32
# represents and adds every integer below 2^24 exactly, float64 every integer below 2^53,
# in any summation order; so below those limits the float product is bit-identical to int64
# arithmetic (numpy's int64 matmul has no BLAS and is several times slower). Above 2^53 the
# int64 path runs. Set USE_EXACT_FLOAT_MATMUL = False to force int64 (the tests compare both).
USE_EXACT_FLOAT_MATMUL = True
_EXACT_LIMITS = ((2 ** 24, np.float32), (2 ** 53, np.float64))


def exact_dtype(terms: int, max_abs_x: int, max_abs_w: int):
    """The cheapest dtype whose matrix product of such integers is exact."""
    if USE_EXACT_FLOAT_MATMUL:
        bound = terms * max_abs_x * max_abs_w
        for limit, dtype in _EXACT_LIMITS:
            if bound < limit:
                return dtype
    return np.int64


def max_abs(x: np.ndarray) -> int:
    """max |x| as a Python int (no copy, no overflow of the int8 minimum)."""
    return max(int(x.max()), -int(x.min())) if x.size else 0


def int_matmul(a: np.ndarray, b: np.ndarray, max_abs_a: int | None = None) -> np.ndarray:
    """a @ b for integer matrices, exactly; returns int64."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[1]), np.int64)
    max_a = max_abs(a) if max_abs_a is None else int(max_abs_a)
    dtype = exact_dtype(a.shape[1], max_a, max_abs(b))
    return (a.astype(dtype, copy=False) @ b.astype(dtype, copy=False)).astype(np.int64)


def project(op, weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Currents into a layer from one projection, without bias: W ⋆ x.

    x: int [N, *source shape] (spikes in {-1, 0, 1} or uint8 pixels); returns int64 [N, *out shape].
    """
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"x must be an integer array, not dtype {x.dtype}")
    weight = np.asarray(weight, dtype=np.int64)
    n = x.shape[0]
    if isinstance(op, Identity):
        return x.astype(np.int64) * weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    if isinstance(op, Dense):
        return int_matmul(x.reshape(n, -1), weight.T)
    if isinstance(op, Conv2d):
        max_x = max(max_abs(x), max(op.pad_value, default=0))
        k, s = op.kernel, op.stride
        out_channels = weight.shape[0]
        w = weight.reshape(out_channels, -1)
        dtype = exact_dtype(w.shape[1], max_x, max_abs(w))
        xp = _pad(x.astype(dtype, copy=False), op.padding, op.pad_value)
        windows = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # [N, C, Ho, Wo, k, k]
        ho, wo = windows.shape[2], windows.shape[3]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)
        out = (cols @ w.T.astype(dtype)).astype(np.int64)  # [N·Ho·Wo, O]
        return out.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2)
    raise TypeError(f"op must be Conv2d, Dense or Identity, not {op!r}")


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


def _axis_fanout(size: int, out_size: int, kernel: int, stride: int, padding: int) -> np.ndarray:
    """For each input index along one axis: how many (output index, kernel tap) pairs read it."""
    counts = np.zeros(size, dtype=np.int64)
    for y in range(out_size):
        for u in range(kernel):
            i = y * stride + u - padding
            if 0 <= i < size:
                counts[i] += 1
    return counts


def fanout(op, weight: np.ndarray, source_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray:
    """Synapses leaving each source neuron through this projection (border clipping counted)."""
    if isinstance(op, Identity):
        return np.ones(source_shape, dtype=np.int64)
    if isinstance(op, Dense):
        return np.full(source_shape, out_shape[0], dtype=np.int64)
    _, h, w = source_shape
    fy = _axis_fanout(h, out_shape[1], op.kernel, op.stride, op.padding)
    fx = _axis_fanout(w, out_shape[2], op.kernel, op.stride, op.padding)
    return np.broadcast_to(out_shape[0] * np.outer(fy, fx)[None], source_shape).copy()


# --------------------------------------------------------------------------- whole network


@dataclass
class GoldenResult:
    """Integer outputs of `run`. Recorded maps are keyed by layer name.

    logits int64 [N, K]; classes int64 [N];
    spikes[layer] int8 [N, T, *shape] (spiking layers); events[layer] int64 [N, T] (non-zero spikes);
    sops[layer] int64 [N, T]: synaptic operations into that layer (events of its sources × fan-out);
    membranes[layer] int64 [N, T, *shape]: U^t before firing (only with record_membranes).
    """
    logits: np.ndarray
    classes: np.ndarray
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    events: dict[str, np.ndarray] = field(default_factory=dict)
    sops: dict[str, np.ndarray] = field(default_factory=dict)
    membranes: dict[str, np.ndarray] = field(default_factory=dict)


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
    residual = {layer.name: np.zeros((n,) + layer.shape, np.int64) for layer in net.layers[:-1]}
    logits = np.zeros((n, net.num_classes), np.int64)
    spikes = {layer.name: np.zeros((n, T) + layer.shape, np.int8) for layer in net.layers[:-1]} if record else {}
    membranes = {layer.name: np.zeros((n, T) + layer.shape, np.int64) for layer in net.layers[:-1]} if record_membranes else {}
    sops = {layer.name: np.zeros((n, T), np.int64) for layer in net.layers} if record else {}
    for t in range(T):
        step = {}
        for layer in net.layers:
            if layer.kind == "encoding":
                current = encoding_current
            else:
                current = layer_currents(layer, step)
                if record:
                    for i, p in enumerate(layer.projections):
                        sops[layer.name][:, t] += (np.abs(step[p.source]).reshape(n, -1).astype(np.int64)
                                                   @ fanouts[layer.name, i].reshape(-1))
            if layer.kind == "readout":
                logits += current
                continue
            if record_membranes:
                membranes[layer.name][:, t] = membrane(residual[layer.name], current, t, layer.leak_shift)
            s, residual[layer.name] = lif_step(residual[layer.name], current, t, layer.theta_pos,
                                               layer.theta_neg, layer.leak_shift, layer.neuron)
            step[layer.name] = s
            if record:
                spikes[layer.name][:, t] = s
    return logits, spikes, sops, membranes


def run(net: Network, images, record: bool = False, record_membranes: bool = False,
        chunk: int = DEFAULT_CHUNK, progress=None) -> GoldenResult:
    """Run the integer network on uint8 images [N, C, H, W].

    `progress`: an optional callable(n_done) invoked after each chunk (the CLI passes tqdm's update).
    """
    from .bounds import check_fits_int64
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
    if record_membranes:
        result.membranes = {k: np.concatenate([p[3][k] for p in parts]) for k in parts[0][3]}
    return result


def classify(net: Network, images) -> np.ndarray:
    """The class per image (smallest index of the maximum logit)."""
    return run(net, images).classes
