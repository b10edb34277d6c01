"""The folds of SPEC §2: each one small pure pass FloatNet -> FloatNet, exact in real arithmetic.

    fold_batchnorm  BN after conv/linear into its weights and bias          (§2.1)
    fold_mpbn       BN on the membrane into per-channel thresholds θ⁺/θ⁻    (§2.4)
    fold_input      1/255 and mean/std into the first layer                 (§2.3)
    fold_amplitude  a layer's spike amplitude into the layers it feeds      (§2.2)
    fold_avgpool    average pooling of spikes into the next conv/linear     (§2.5)
    to_layers       the folded op sequence as a layered FloatNetwork (projections per layer)

`fold_all` runs them in that order. Each pass raises ModelError naming the layer when the
model has a shape it cannot fold exactly.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from gen.errors import ModelError, where
from gen.frontend.floatnet import (WEIGHTED, AvgPool, BatchNorm, ChannelScale, Conv, Converted, Flatten, FloatNet, Lif,
                       Linear, Residual, input_shapes, op_out_shape)
from gen.ir import INPUT, Conv2d, Dense, Identity
from gen.ir.reference import FloatLayer, FloatNetwork, FloatProjection, FloatTables

log = logging.getLogger(__name__)

# A normalisation mean that is k/255 up to this relative error is taken as exactly k/255
# (the checkpoint stores it as a float): the folded padding pixel must be an integer.
PAD_PIXEL_TOLERANCE = 1e-9


def _frozen(array) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


def _map_sequences(net: FloatNet, rewrite) -> FloatNet:
    """Apply `rewrite(ops, in_shape) -> ops` to the top sequence and every residual body and shortcut."""
    def walk(ops, shape):
        out = []
        for op, op_shape in zip(ops, input_shapes(ops, shape)):
            if isinstance(op, Residual):
                op = dataclasses.replace(op, body=tuple(walk(op.body, op_shape)),
                                         shortcut=tuple(walk(op.shortcut, op_shape)))
            out.append(op)
        return rewrite(out, shape)
    return dataclasses.replace(net, ops=tuple(walk(net.ops, net.input_shape)))


def _channel(values, ndim: int) -> np.ndarray:
    return np.asarray(values).reshape((-1,) + (1,) * (ndim - 1))


# --------------------------------------------------------------------------- §2.1 BatchNorm


def fold_batchnorm(net: FloatNet) -> FloatNet:
    """W′ = W·g, b′ = (b − μ)·g + β per output channel, g = γ/√(σ²+ε)."""
    def rewrite(ops, shape):
        out = []
        for op in ops:
            if not isinstance(op, BatchNorm):
                out.append(op)
                continue
            if not out or not isinstance(out[-1], WEIGHTED):
                raise ModelError(f"{where(op.name)}batchnorm must directly follow a conv2d or linear "
                                 f"(a BN elsewhere cannot fold into weights)")
            prev = out.pop()
            g, h = op.scale_shift()
            out.append(dataclasses.replace(prev, weight=_frozen(prev.weight * _channel(g, prev.weight.ndim)),
                                           bias=_frozen(prev.bias * g + h)))
        return out
    return _map_sequences(net, rewrite)


# --------------------------------------------------------------------------- §2.4 MPBN


def fold_mpbn(net: FloatNet) -> FloatNet:
    """Fire on BN(u) ≥ θ⁺ ⟺ u ≥ μ + (θ⁺ − β)·√(σ²+ε)/γ (γ > 0), likewise for θ⁻."""
    def rewrite(ops, shape):
        out = []
        for op in ops:
            if isinstance(op, Lif) and op.mpbn is not None:
                bn = op.mpbn
                bad = np.flatnonzero(bn.gamma <= 0)
                if bad.size:
                    c = int(bad[0])
                    raise ModelError(f"{where(op.name)}MPBN γ must be > 0 in every channel (it flips or "
                                     f"removes the threshold), not {float(bn.gamma[c])!r} in channel {c}")
                g = np.sqrt(bn.var + bn.eps) / bn.gamma
                op = dataclasses.replace(op, mpbn=None, theta_pos=_frozen(bn.mean + (op.theta_pos - bn.beta) * g),
                                         theta_neg=_frozen(bn.mean + (op.theta_neg - bn.beta) * g))
            out.append(op)
        return out
    return _map_sequences(net, rewrite)


# --------------------------------------------------------------------------- §2.3 input scale and normalisation


def _exact_pad_pixels(name: str, pixels: np.ndarray) -> np.ndarray:
    rounded = np.round(pixels)
    for c, (p, r) in enumerate(zip(pixels, rounded)):
        if not (0 <= r <= 255) or abs(p - r) > PAD_PIXEL_TOLERANCE * max(1.0, abs(p)):
            raise ModelError(f"{where(name)}zero padding of the normalised input is the pixel value "
                             f"mean/scale = {p:.6g} in channel {c}, which must be an integer in 0..255 for "
                             f"the padding to fold exactly (use padding 0 or a mean of k/255)")
    return rounded


def fold_input(net: FloatNet) -> FloatNet:
    """x = (pixel·scale − mean)/std folded into the first conv/linear, which then sees raw pixels."""
    ops = list(net.ops)
    i = 0
    while i < len(ops) and isinstance(ops[i], Flatten):
        i += 1
    if i == len(ops) or not isinstance(ops[i], WEIGHTED):
        name = ops[i].name if i < len(ops) else None
        raise ModelError(f"{where(name)}the first layer must be a conv2d or linear (flatten first is fine): "
                         f"only it can absorb the input scaling")
    first = ops[i]
    channels = net.input_shape[0]
    mean = net.input_mean if net.input_mean is not None else np.zeros(channels)
    std = net.input_std if net.input_std is not None else np.ones(channels)
    gain, offset = net.input_scale / std, -mean / std          # x_norm = pixel·gain + offset, per channel
    if isinstance(first, Conv):
        gain_w, offset_w = _channel(gain, 3)[None], _channel(offset, 3)[None]
    else:  # flattened (C, H, W): input feature j belongs to channel j // (H·W)
        per = int(np.prod(net.input_shape[1:]))
        gain_w, offset_w = np.repeat(gain, per)[None], np.repeat(offset, per)[None]
    weight = first.weight * gain_w
    bias = first.bias + (first.weight * offset_w).reshape(first.weight.shape[0], -1).sum(1)
    changes = {"weight": _frozen(weight), "bias": _frozen(bias)}
    if isinstance(first, Conv) and first.padding > 0 and np.any(offset != 0):
        # The float model pads the normalised input with 0: the pixel value that normalises to 0.
        changes["pad_value"] = _frozen(_exact_pad_pixels(first.name, mean / net.input_scale))
    ops[i] = dataclasses.replace(first, **changes)
    return dataclasses.replace(net, ops=tuple(ops), input_scale=1.0, input_mean=None, input_std=None)


# --------------------------------------------------------------------------- §2.2 amplitude


def _scale_consumer(ops: list, start: int, a: float, lif_name: str) -> None:
    """Multiply the weights that read the spikes leaving ops[start-1] by a."""
    j = start
    while j < len(ops) and isinstance(ops[j], (AvgPool, Flatten)):
        j += 1
    consumer = ops[j] if j < len(ops) else None
    if isinstance(consumer, WEIGHTED):
        ops[j] = dataclasses.replace(consumer, weight=_frozen(consumer.weight * a))
    elif isinstance(consumer, Residual):
        # Both branches read the spikes: the body's first conv and the shortcut (its 1×1 conv,
        # or the identity's per-channel weight, SPEC §2.2) each take the amplitude.
        body, shortcut = list(consumer.body), list(consumer.shortcut)
        _scale_consumer(body, 0, a, lif_name)
        shortcut[0] = dataclasses.replace(shortcut[0], weight=_frozen(shortcut[0].weight * a))
        ops[j] = dataclasses.replace(consumer, body=tuple(body), shortcut=tuple(shortcut))
    else:
        raise ModelError(f"{where(lif_name)}the spikes must feed a conv2d, linear or residual block "
                         f"(through avgpool2d/flatten), not {type(consumer).__name__ if consumer else 'nothing'}")


def fold_amplitude(net: FloatNet) -> FloatNet:
    """A layer emitting a·s becomes one emitting s, and the weights reading it become a·W."""
    def rewrite(ops, shape):
        ops = list(ops)
        for i, op in enumerate(ops):
            if isinstance(op, Lif) and op.amplitude != 1.0:
                _scale_consumer(ops, i + 1, op.amplitude, op.name)
                ops[i] = dataclasses.replace(op, amplitude=1.0)
        return ops
    return _map_sequences(net, rewrite)


# --------------------------------------------------------------------------- §2.5 average pooling


def _pooled_conv(conv: Conv, k: int, in_shape, pool_name: str) -> Conv:
    _, h, w = in_shape
    if conv.padding and (h % k or w % k):
        raise ModelError(f"{where(pool_name)}avgpool2d {k} drops rows of a {h}×{w} map and the next conv pads: "
                         f"the pair cannot fold into one conv exactly (use sizes divisible by {k} or padding 0)")
    weight = np.repeat(np.repeat(conv.weight, k, axis=2), k, axis=3) / (k * k)
    return dataclasses.replace(conv, weight=_frozen(weight), stride=conv.stride * k, padding=conv.padding * k)


def _pooled_linear(linear: Linear, k: int, in_shape) -> Linear:
    c, h, w = in_shape
    hp, wp = h // k, w // k
    pooled = linear.weight.reshape(-1, c, hp, wp)
    weight = np.zeros((pooled.shape[0], c, h, w))
    weight[:, :, :hp * k, :wp * k] = np.repeat(np.repeat(pooled, k, axis=2), k, axis=3) / (k * k)
    return dataclasses.replace(linear, weight=_frozen(weight.reshape(pooled.shape[0], -1)))


def fold_avgpool(net: FloatNet) -> FloatNet:
    """Pool(k) of spikes then conv/linear -> one projection from the unpooled spikes."""
    def rewrite(ops, shape):
        ops = list(ops)
        shapes = input_shapes(ops, shape)
        out, i = [], 0
        while i < len(ops):
            op = ops[i]
            if not isinstance(op, AvgPool):
                out.append(op)
                i += 1
                continue
            if not out or not isinstance(out[-1], Lif):
                raise ModelError(f"{where(op.name)}avgpool2d must directly follow a lif (pooling spikes); "
                                 f"pooling pixels or currents is not supported")
            j = i + 1
            while j < len(ops) and isinstance(ops[j], Flatten):
                j += 1
            consumer = ops[j] if j < len(ops) else None
            if isinstance(consumer, Conv) and j == i + 1:
                ops[j] = _pooled_conv(consumer, op.kernel, shapes[i], op.name)
            elif isinstance(consumer, Linear) and j > i + 1:
                ops[j] = _pooled_linear(consumer, op.kernel, shapes[i])
            else:
                raise ModelError(f"{where(op.name)}avgpool2d must be followed by a conv2d, or by flatten and "
                                 f"a linear, not {type(consumer).__name__ if consumer else 'nothing'}")
            i += 1  # drop the pool; the flatten(s) after it now flatten the unpooled map
        return out
    return _map_sequences(net, rewrite)


# --------------------------------------------------------------------------- layers


def _projection(op, source: str, source_shape) -> tuple[FloatProjection, tuple[int, ...]]:
    if isinstance(op, Conv):
        ir_op = Conv2d(kernel=op.weight.shape[2], stride=op.stride, padding=op.padding,
                       pad_value=tuple(int(v) for v in op.pad_value) if op.pad_value is not None else ())
    else:
        ir_op = Dense()
    return FloatProjection(source, ir_op, op.weight), op_out_shape(op, source_shape)


def _shortcut_projection(block: Residual, source: str, source_shape) -> tuple[FloatProjection, np.ndarray | None]:
    """The folded shortcut as one more projection from the block's input spikes, and its bias.

    A projection shortcut's bias (its conv's, and its BN's shift) adds to the layer's bias.
    """
    if len(block.shortcut) != 1:
        raise ModelError(f"{where(block.name)}the shortcut must be one op after folding (fold its batchnorm first), "
                         f"not {[type(op).__name__ for op in block.shortcut]}")
    op = block.shortcut[0]
    if isinstance(op, ChannelScale):
        return FloatProjection(source, Identity(), op.weight), None
    if isinstance(op, Conv):
        return _projection(op, source, source_shape)[0], op.bias
    raise ModelError(f"{where(block.name)}the shortcut must be an identity or a 1×1 conv2d, not {type(op).__name__}")


def _layers_of(ops, source: str, shape, timesteps: int, layers: list):
    """Append the layers of a folded sequence; returns the pending (unfired) current, if any."""
    pending = None  # (name, projections, bias, shape)
    for op in ops:
        if isinstance(op, Flatten):
            if pending is not None:
                raise ModelError(f"{where(op.name)}flatten between a current and its lif is not supported")
            shape = (int(np.prod(shape)),)
        elif isinstance(op, WEIGHTED):
            if pending is not None:
                raise ModelError(f"{where(op.name)}two current layers in a row ({pending[0]!r}, {op.name!r}): "
                                 f"each conv2d/linear must be followed by a lif, except the readout")
            projection, out_shape = _projection(op, source, shape)
            pending = (op.name, [projection], op.bias, out_shape)
        elif isinstance(op, Residual):
            if pending is not None or source == INPUT:
                raise ModelError(f"{where(op.name)}a residual block must take the spikes of a lif")
            pending = _layers_of(op.body, source, shape, timesteps, layers)
            if pending is None:
                raise ModelError(f"{where(op.name)}the body must end in a conv2d or linear, not a lif")
            projection, bias = _shortcut_projection(op, source, shape)
            pending[1].append(projection)
            if bias is not None:
                pending = (pending[0], pending[1], _frozen(pending[2] + bias), pending[3])
        elif isinstance(op, Converted):
            if pending is None:
                raise ModelError(f"{where(op.name)}an {op.neuron} neuron must follow a conv2d/linear")
            name, projections, bias, out_shape = pending
            layers.append(converted_layer(op, name, "encoding" if source == INPUT else "spiking", out_shape,
                                          projections, bias))
            source, shape, pending = name, out_shape, None
        elif isinstance(op, Lif):
            if pending is None:
                raise ModelError(f"{where(op.name)}a lif must follow a conv2d/linear (+BN) or a residual block")
            if op.mpbn is not None or op.amplitude != 1.0:
                raise ModelError(f"{where(op.name)}MPBN and amplitude must be folded before to_layers")
            name, projections, bias, out_shape = pending
            layers.append(FloatLayer(name=name, kind="encoding" if source == INPUT else "spiking",
                                     shape=out_shape, projections=tuple(projections), bias=bias,
                                     neuron=op.neuron, theta_pos=op.theta_pos,
                                     theta_neg=op.theta_neg if op.neuron == "ternary" else None,
                                     leak_shift=op.leak_shift, lif_name=op.name))
            source, shape, pending = name, out_shape, None
        else:
            raise ModelError(f"{where(op.name)}{type(op).__name__} is still present: fold it first")
    return pending


def converted_layer(op: Converted, name: str, kind: str, shape, projections, bias) -> FloatLayer:
    """The layer of an if_subtract or msat neuron, in normalised units (threshold 1, docs/msat.md §3).

    if_subtract: θ± = ±1/2, amplitude 1. msat: Θ = 1, and the cell grids of its tables.
    """
    f, c = op.fields, shape[0]
    if op.neuron == "if_subtract":
        tables = FloatTables(amplitude=np.ones(c), signed=f["signed"], fields=f)
        return FloatLayer(name=name, kind=kind, shape=shape, projections=tuple(projections), bias=bias,
                          neuron="if_subtract", theta_pos=np.full(c, 0.5), theta_neg=np.full(c, -0.5),
                          leak_shift=0, lif_name=op.name, tables=tables)
    if f["rule"] != "ladder":
        raise ModelError(f"{where(op.name)}msat rule {f['rule']!r} is a float model with no integer semantics; "
                         "convert with --rule ladder (docs/msat.md §3b)")
    from snn.msat import ladder_tables
    lut_d, lut_x, ladder_z = ladder_tables(f)
    tables = FloatTables(ladder_steps=f["ladder_steps"], lut_half=f["lut_half"], lut_d=lut_d, lut_x=lut_x,
                         ladder_z=ladder_z, half_start=f["half_start"], d_bits=np.full(c, f["d_bits"]), x_bits=np.full(c, f["x_bits"]), fields=f)
    return FloatLayer(name=name, kind=kind, shape=shape, projections=tuple(projections), bias=bias, neuron="msat",
                      theta_pos=np.ones(c), theta_neg=None, leak_shift=0, lif_name=op.name, tables=tables)


def _ladder_weights(layers: list[FloatLayer], projection: FloatProjection) -> FloatProjection:
    """An msat source's spikes reach the synapses as s << (M − m): its weights hold the smallest rung 2^−M."""
    for layer in layers:
        if layer.name == projection.source and layer.neuron == "msat":
            return dataclasses.replace(projection, weight=_frozen(np.ldexp(projection.weight, -layer.tables.ladder_steps)))
    return projection


def to_layers(net: FloatNet) -> FloatNetwork:
    """The folded op sequence as layers: currents from projections, then a neuron (or the readout)."""
    layers: list[FloatLayer] = []
    pending = _layers_of(net.ops, INPUT, net.input_shape, net.timesteps, layers)
    if pending is None or len(pending[3]) != 1:
        last = net.ops[-1].name
        raise ModelError(f"{where(last)}the model must end in a linear (+BN) readout with no lif after it")
    if not layers:
        raise ModelError(f"{where(pending[0])}the model needs at least one spiking layer before the readout")
    name, projections, bias, out_shape = pending
    layers.append(FloatLayer(name=name, kind="readout", shape=out_shape, projections=tuple(projections),
                             bias=bias, neuron=None, theta_pos=None, theta_neg=None, leak_shift=0))
    if any(layer.neuron == "msat" for layer in layers):
        layers = [dataclasses.replace(layer, projections=tuple(_ladder_weights(layers, p) for p in layer.projections))
                  for layer in layers]
    return FloatNetwork(name=net.name, input_shape=net.input_shape, timesteps=net.timesteps, layers=tuple(layers))


FOLDS = (fold_batchnorm, fold_mpbn, fold_input, fold_amplitude, fold_avgpool)


def fold_all(net: FloatNet) -> FloatNet:
    for fold in FOLDS:
        net = fold(net)
        log.debug("after %s: %d ops", fold.__name__, len(net.ops))
    return net
