"""Quantisation (SPEC §3): a layered float network -> the integer IR.

Per output channel of a spiking layer, c = 2^e with e the largest exponent such that every
weight into that channel, from every projection (shortcuts included), has
|round(W·c)| <= 2^(wbits−1) − 1. The readout uses one e for all rows (argmax needs one
scale). W_int = round(W·c), b_int = round(b·c), θ±_int = round(θ±·c); rounding is numpy's
round-half-to-even. When θ is a dyadic rational (the plain neuron: θ = 0.5·V_th) it must
stay exact, so e may not fall below the exponent that makes θ·2^e an integer; MPBN
thresholds are rounded like the bias.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from gen.errors import ModelError, where
from gen.ir import MAX_WBITS, Layer, Network, NeuronTables, Projection
from gen.ir.reference import FloatLayer, FloatNetwork

log = logging.getLogger(__name__)

DEFAULT_WBITS = 8
MAX_EXACT = 2 ** 53  # integers above this are not exact in the float64 reference
# θ counts as "meant to be exact" when θ·2^16 is an integer (θ = 0.5·V_th with V_th = 1, 0.75,
# 2, ...). Every float64 is dyadic, so without a limit the rule would bind MPBN thresholds too.
MAX_THETA_FRACTION_BITS = 16


def best_exponent(max_abs: float, wbits: int) -> int | None:
    """The largest e with round(max_abs·2^e) <= 2^(wbits−1) − 1; None when max_abs is 0."""
    if max_abs == 0:
        return None
    qmax = 2 ** (wbits - 1) - 1
    # log2(qmax) − log2(max_abs), not log2(qmax / max_abs): for a subnormal max_abs the
    # quotient overflows to inf and floor(inf) raises OverflowError.
    e = math.floor(math.log2(qmax) - math.log2(max_abs))
    while np.round(math.ldexp(max_abs, e + 1)) <= qmax:
        e += 1
    while np.round(math.ldexp(max_abs, e)) > qmax:
        e -= 1
    return e


def exact_exponent(values: np.ndarray) -> int | None:
    """The smallest e (−64 <= e <= 16) making every value·2^e an integer, else None."""
    for e in range(-64, MAX_THETA_FRACTION_BITS + 1):
        scaled = np.ldexp(values, e)
        if np.all(scaled == np.round(scaled)):
            return e
    return None


def channel_max_abs(layer: FloatLayer) -> np.ndarray:
    """max |W| into each output channel over every projection."""
    out = np.zeros(layer.shape[0])
    for p in layer.projections:
        w = np.abs(p.weight).reshape(p.weight.shape[0], -1)
        out = np.maximum(out, w.max(axis=1) if w.shape[1] else 0.0)
    return out


def _channel_exponents(layer: FloatLayer, wbits: int) -> np.ndarray:
    max_abs = channel_max_abs(layer)
    found = [best_exponent(m, wbits) for m in max_abs]
    known = [e for e in found if e is not None]
    if layer.kind == "readout":
        common = min(known) if known else 0
        return np.full(layer.shape[0], common, dtype=np.int64)
    exps = np.zeros(layer.shape[0], dtype=np.int64)
    for c, e in enumerate(found):
        if e is None:
            # No synapse reaches this neuron: it sees only its bias. Any scale keeps its
            # spikes; the layer's largest keeps the most precision for bias and θ.
            log.warning("layer %r channel %d has all-zero weights", layer.name, c)
            e = max(known) if known else 0
            theta_exp = exact_exponent(np.array([layer.theta_pos[c]]))
            if theta_exp is not None:
                e = max(e, theta_exp)
        exps[c] = e
    return exps


def _check_theta_exact(layer: FloatLayer, exps: np.ndarray, wbits: int) -> None:
    thetas = [layer.theta_pos] + ([layer.theta_neg] if layer.theta_neg is not None else [])
    for c in range(layer.shape[0]):
        need = exact_exponent(np.array([t[c] for t in thetas]))
        if need is not None and exps[c] < need:
            max_abs = channel_max_abs(layer)[c]
            raise ModelError(
                f"{where(layer.name)}channel {c}: the largest weight {max_abs:.6g} needs scale exponent "
                f"{int(exps[c])} for wbits={wbits}, below {need}, the smallest that keeps θ⁺={float(layer.theta_pos[c])!r} "
                f"exact; the weights cannot fit {wbits} bits (use more weight bits or retrain with smaller weights)")


def _round(name: str, what: str, values: np.ndarray, exps: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):    # an overflow to inf is refused just below, in one line
        scaled = np.ldexp(values, exps.reshape((-1,) + (1,) * (values.ndim - 1)))
    if np.any(np.abs(scaled) >= MAX_EXACT):
        raise ModelError(f"{where(name)}{what} scaled by 2^e reaches {np.abs(scaled).max():.3g}, which must stay "
                         f"below 2^53 (the weights are tiny next to the {what}); the network cannot be quantised")
    return np.round(scaled).astype(np.int64)


def quantise_layer(layer: FloatLayer, wbits: int) -> Layer:
    exps = _channel_exponents(layer, wbits)
    theta_pos = theta_neg = None
    if layer.kind != "readout":
        _check_theta_exact(layer, exps, wbits)
        theta_pos = _round(layer.name, "θ⁺", layer.theta_pos, exps)
        if layer.theta_neg is not None:
            theta_neg = _round(layer.name, "θ⁻", layer.theta_neg, exps)
            bad = np.flatnonzero(theta_neg >= theta_pos)
            if bad.size:
                c = int(bad[0])
                raise ModelError(f"{where(layer.name)}channel {c}: θ⁻ and θ⁺ round to {int(theta_neg[c])} >= "
                                 f"{int(theta_pos[c])} at scale 2^{int(exps[c])}; the thresholds must stay apart "
                                 f"(use more weight bits)")
        lost = np.flatnonzero((layer.theta_pos > 0) & (theta_pos <= 0))
        if lost.size:
            c = int(lost[0])
            raise ModelError(f"{where(layer.name)}channel {c}: θ⁺={float(layer.theta_pos[c])!r} > 0 rounds to "
                             f"{int(theta_pos[c])} at scale 2^{int(exps[c])}; θ must stay > 0 (use more weight bits)")
    projections = tuple(Projection(p.source, p.op, _round(layer.name, "weight", p.weight, exps))
                        for p in layer.projections)
    return Layer(name=layer.name, kind=layer.kind, shape=tuple(layer.shape), projections=projections,
                 bias=_round(layer.name, "bias", layer.bias, exps), neuron=layer.neuron, theta_pos=theta_pos,
                 theta_neg=theta_neg, leak_shift=layer.leak_shift, scale_exp=exps,
                 tables=_neuron_tables(layer, exps))


def _neuron_tables(layer: FloatLayer, exps: np.ndarray) -> NeuronTables | None:
    """The integer tables of a converted neuron at the channels' scales (docs/msat.md §3)."""
    t = layer.tables
    if t is None:
        return None
    if layer.neuron == "if_subtract":
        return NeuronTables(amplitude=_round(layer.name, "amplitude", t.amplitude, exps), signed=t.signed)
    low = np.flatnonzero(exps < t.ladder_steps)
    if low.size:
        c = int(low[0])
        raise ModelError(f"{where(layer.name)}channel {c}: scale exponent {int(exps[c])} is below the ladder's "
                         f"{t.ladder_steps} steps, so Θ >> m would not be exact (fewer --ladder-steps or more weight bits)")
    return NeuronTables(ladder_steps=t.ladder_steps, lut_half=t.lut_half, lut_d=t.lut_d, lut_x=t.lut_x,
                        ladder_z=t.ladder_z, d_shift=exps - t.d_bits, x_shift=exps - t.x_bits,
                        half_start=t.half_start)


def quantise(net: FloatNetwork, wbits: int = DEFAULT_WBITS) -> Network:
    """The integer IR of a layered float network."""
    if isinstance(wbits, bool) or not isinstance(wbits, int) or not 2 <= wbits <= MAX_WBITS:
        raise ValueError(f"wbits must be an int between 2 and {MAX_WBITS}, not {wbits!r}")
    layers = tuple(quantise_layer(layer, wbits) for layer in net.layers)
    return Network(name=net.name, input_shape=tuple(net.input_shape), timesteps=net.timesteps, wbits=wbits,
                   layers=layers)
