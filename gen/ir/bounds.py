"""Exact value ranges of every integer quantity, and the register widths they need (SPEC §4).

All intervals are closed [lo, hi] of Python ints and hold for every input image:

current     I = b + Σ W ⋆ s: the worst case per neuron, each synapse taking the extreme of its
            source (pixels 0…255, ternary spikes −1…1, binary 0…1; padded taps hold their
            fixed pad value), then the extreme over neurons. Attained when the sources can
            take those values (always for the encoding layer).
accumulator every partial sum of the bias and the synaptic terms, in any order.
membrane    U^t for each t: U^0 = I; U^t = R^{t−1} + (I << k·t), where R^{t−1} is 0 after a
            spike, or U^{t−1} strictly between the shifted thresholds (ternary) / strictly
            below θ⁺ (binary, which has no lower threshold, so R can only grow downwards).
            The shifted thresholds θ±<<k·t are included: the comparator holds them too.
logit       partial and final Σ_t I^t of the readout.
converted   (docs/msat.md §3) if_subtract: U^t = R^{t−1} + I^t and R^t = U^t − s·A from the
            exact recursion over what each spike value allows; the balance n in [0, T].
            msat: the same over the ladder (a spike subtracts Θ >> m ≥ Θ >> M, no spike leaves
            U < Θ), the sum S of residuals, and N = t·R − S shifted left by max(0, −d_shift)
            (the ladder-index numerator): `state` is their hull.

Widths are two's-complement bit counts: the smallest n with −2^(n−1) ≤ lo and hi ≤ 2^(n−1)−1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.ir import INPUT, Network
from gen.ops import op_spec

PIXEL_RANGE = (0, 255)
SPIKE_RANGE = {"ternary": (-1, 1), "binary": (0, 1)}


def signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest two's-complement register that holds every value in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"lo must be <= hi, not {lo} > {hi}")
    bits = 1
    while lo < -(1 << (bits - 1)) or hi > (1 << (bits - 1)) - 1:
        bits += 1
    return bits


def _hull(*intervals: tuple[int, int]) -> tuple[int, int]:
    return min(i[0] for i in intervals), max(i[1] for i in intervals)


@dataclass(frozen=True)
class LayerBounds:
    name: str
    kind: str
    current: tuple[int, int]                      # over all neurons
    current_per_channel: tuple[tuple[int, int], ...]
    accumulator: tuple[int, int]
    membrane: tuple[tuple[int, int], ...] | None  # one interval per timestep (spiking layers)
    logit: tuple[int, int] | None                 # readout only
    current_bits: int
    accumulator_bits: int
    membrane_bits: int | None
    logit_bits: int | None
    state: tuple[int, int] | None = None          # converted neurons: n, S, N (docs/msat.md)
    state_bits: int | None = None

    @property
    def max_bits(self) -> int:
        return max(b for b in (self.current_bits, self.accumulator_bits, self.membrane_bits, self.logit_bits,
                               self.state_bits) if b is not None)


def spike_value_range(layer) -> tuple[int, int]:
    """What a layer's spikes put on its synapses: s, or s << (M − m) for msat (docs/msat.md)."""
    if layer.neuron == "msat":
        return (0, 1 << layer.tables.ladder_steps)
    if layer.neuron == "if_subtract":
        return (-1, 1) if layer.tables.signed else (0, 1)
    return SPIKE_RANGE[layer.neuron]


def _source_range(net: Network, source: str) -> tuple[int, int]:
    return PIXEL_RANGE if source == INPUT else spike_value_range(net.layer(source))


def _converted_ranges(layer, currents, timesteps):
    """(U^t per step, hull of the extra state) of an if_subtract or msat layer (no leak)."""
    per_step = [[] for _ in range(timesteps)]
    state = [(0, 0)]
    for c, (i_lo, i_hi) in enumerate(currents):
        r_lo = r_hi = s_lo = s_hi = 0
        if layer.tables.half_start:
            r_lo = r_hi = int(layer.theta_pos[c]) >> 1
        for t in range(timesteps):
            u_lo, u_hi = r_lo + i_lo, r_hi + i_hi
            per_step[t].append((u_lo, u_hi))
            options = []
            if layer.neuron == "if_subtract":
                theta_pos, theta_neg = int(layer.theta_pos[c]), int(layer.theta_neg[c])
                a = int(layer.tables.amplitude[c])
                if u_hi >= theta_pos:
                    options.append((max(u_lo, theta_pos) - a, u_hi - a))
                if u_lo <= theta_pos - 1:
                    options.append((u_lo, min(u_hi, theta_pos - 1)))
                if layer.tables.signed and u_lo <= theta_neg:
                    options.append((u_lo + a, min(u_hi, theta_neg) + a))
                state.append((-timesteps, timesteps))
            else:
                big = int(layer.theta_pos[c])
                small = big >> layer.tables.ladder_steps
                if t > 0:  # N = t·R^{t−1} − S^{t−1}, shifted left when d_shift < 0
                    left = max(0, -int(layer.tables.d_shift[c]))
                    state.append(((t * r_lo - s_hi) << left, (t * r_hi - s_lo) << left))
                    x_left = max(0, -int(layer.tables.x_shift[c]))
                    state.append((i_lo << x_left, i_hi << x_left))
                if u_hi >= small:
                    options.append((0, u_hi - small))
                if u_lo <= big - 1:
                    options.append((u_lo, min(u_hi, big - 1)))
            r_lo, r_hi = _hull(*options)
            s_lo, s_hi = s_lo + r_lo, s_hi + r_hi
            state.append((s_lo, s_hi) if layer.neuron == "msat" else (r_lo, r_hi))
    return [_hull(*intervals) for intervals in per_step], _hull(*state)


def neuron_current_ranges(net: Network, layer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-neuron (I_lo, I_hi, acc_lo, acc_hi), int64 arrays of the layer's shape."""
    bias = np.asarray(layer.bias, np.int64).reshape((-1,) + (1,) * (len(layer.shape) - 1))
    i_lo = np.broadcast_to(bias, layer.shape).copy()
    i_hi = i_lo.copy()
    a_lo = np.broadcast_to(np.minimum(bias, 0), layer.shape).copy()
    a_hi = np.broadcast_to(np.maximum(bias, 0), layer.shape).copy()
    for p in layer.projections:
        # Each op's entry in gen.ops says what one projection adds (OpSpec.current_bounds).
        terms = op_spec(p.op).current_bounds(p.op, p.weight, net.source_shape(p.source),
                                             _source_range(net, p.source))
        for total, term in zip((i_lo, i_hi, a_lo, a_hi), terms):
            total += term
    return i_lo, i_hi, a_lo, a_hi


def _channel_extremes(lo: np.ndarray, hi: np.ndarray) -> list[tuple[int, int]]:
    c = lo.shape[0]
    return [(int(lo.reshape(c, -1)[i].min()), int(hi.reshape(c, -1)[i].max())) for i in range(c)]


def _membrane_ranges(layer, currents: list[tuple[int, int]], timesteps: int) -> list[tuple[int, int]]:
    """U^t interval per step: the hull over channels of the per-channel recursion."""
    k = layer.leak_shift
    per_step = [[] for _ in range(timesteps)]
    for c, (i_lo, i_hi) in enumerate(currents):
        theta_pos = int(layer.theta_pos[c])
        theta_neg = int(layer.theta_neg[c]) if layer.neuron == "ternary" else None
        r_lo = r_hi = 0  # R^{-1} = 0
        for t in range(timesteps):
            u_lo, u_hi = r_lo + (i_lo << (k * t)), r_hi + (i_hi << (k * t))
            per_step[t].append((u_lo, u_hi))
            # R^t: 0 after a spike, or U^t when it stays strictly inside the thresholds.
            keep_hi = min(u_hi, (theta_pos << (k * t)) - 1)
            keep_lo = u_lo if theta_neg is None else max(u_lo, (theta_neg << (k * t)) + 1)
            r_lo, r_hi = (min(0, keep_lo), max(0, keep_hi)) if keep_lo <= keep_hi else (0, 0)
    return [_hull(*intervals) for intervals in per_step]


def layer_bounds(net: Network, layer) -> LayerBounds:
    i_lo, i_hi, a_lo, a_hi = neuron_current_ranges(net, layer)
    per_channel = _channel_extremes(i_lo, i_hi)
    state = state_bits = None
    current = _hull(*per_channel)
    accumulator = (int(a_lo.min()), int(a_hi.max()))
    T = net.timesteps
    membrane = logit = None
    membrane_bits = logit_bits = None
    if layer.kind == "readout":
        logit = (min(0, T * current[0]), max(0, T * current[1]))
        logit_bits = signed_width(*logit)
    elif layer.tables is not None:
        steps, state = _converted_ranges(layer, per_channel, T)
        membrane = tuple(steps)
        thresholds = [(int(layer.theta_pos.min()), int(layer.theta_pos.max()))]
        if layer.theta_neg is not None:
            thresholds.append((int(layer.theta_neg.min()), int(layer.theta_neg.max())))
        membrane_bits = signed_width(*_hull(*membrane, *thresholds))
        state_bits = signed_width(*state)
    else:
        membrane = tuple(_membrane_ranges(layer, per_channel, T))
        thresholds = [(int(layer.theta_pos.min()) << (layer.leak_shift * t), int(layer.theta_pos.max()) << (layer.leak_shift * t))
                      for t in range(T)]
        if layer.neuron == "ternary":
            thresholds += [(int(layer.theta_neg.min()) << (layer.leak_shift * t), int(layer.theta_neg.max()) << (layer.leak_shift * t))
                           for t in range(T)]
        membrane_bits = signed_width(*_hull(*membrane, *thresholds))
    return LayerBounds(name=layer.name, kind=layer.kind, current=current, current_per_channel=tuple(per_channel),
                       accumulator=accumulator, membrane=membrane, logit=logit,
                       current_bits=signed_width(*current), accumulator_bits=signed_width(*accumulator),
                       membrane_bits=membrane_bits, logit_bits=logit_bits, state=state, state_bits=state_bits)


def network_bounds(net: Network) -> dict[str, LayerBounds]:
    """Bounds of every layer, keyed by layer name, in topological order."""
    return {layer.name: layer_bounds(net, layer) for layer in net.layers}


def check_fits_int64(net: Network) -> None:
    """Refuse networks whose integer semantics would overflow the golden model's int64."""
    for name, b in network_bounds(net).items():
        if b.max_bits > 63:
            raise ValueError(f"layer {name!r}: values need {b.max_bits} bits, which must be <= 63 "
                             f"(reduce timesteps, leak_shift or weight bits)")
