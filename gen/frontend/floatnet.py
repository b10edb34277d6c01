"""The float network: a checkpoint as float64 numpy ops, and its float semantics (SPEC §1).

`parse_checkpoint` turns a checkpoint dict into a `FloatNet`: a sequence of small frozen op
records (conv, linear, batchnorm, lif, avgpool, flatten, residual with its shortcut) holding
float64 arrays.
The folds (gen.frontend.folds) rewrite a FloatNet into an equivalent FloatNet; `run_float` evaluates
one at any stage (torch float64) so each fold can be checked to leave logits and spikes
unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snn.arch import LAYER_FIELDS, ArchError, _check_converted

from gen.errors import ModelError, where

SUPPORTED_LAYER_TYPES = ("conv2d", "linear", "batchnorm2d", "batchnorm1d", "lif", "avgpool2d", "flatten", "residual",
                         "if_subtract", "msat")
CONVERTED_TYPES = ("if_subtract", "msat")  # converted ANNs (docs/msat.md): weights already normalised
LAYER_DEFAULTS = {  # as docs/checkpoint.md and snn.arch
    "conv2d": {"stride": 1, "padding": 0, "bias": True},
    "linear": {"bias": True},
    "batchnorm2d": {"eps": 1e-5}, "batchnorm1d": {"eps": 1e-5},
    "lif": {"neuron": "ternary", "tau_shift": 2, "v_threshold": 1.0, "amplitude": False, "mpbn": False,
            "mpbn_eps": 1e-5},
    "avgpool2d": {}, "flatten": {}, "residual": {}, "if_subtract": {}, "msat": {},
}


# --------------------------------------------------------------------------- ops


@dataclass(frozen=True, eq=False)
class Conv:
    name: str
    weight: np.ndarray            # [O, C, k, k]
    bias: np.ndarray              # [O]
    stride: int
    padding: int
    pad_value: np.ndarray | None = None  # per input channel, in the op's input domain; None = zeros


@dataclass(frozen=True, eq=False)
class Linear:
    name: str
    weight: np.ndarray            # [O, I]
    bias: np.ndarray              # [O]


@dataclass(frozen=True, eq=False)
class BatchNorm:
    name: str
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """y = x·g + h."""
        g = self.gamma / np.sqrt(self.var + self.eps)
        return g, self.beta - self.mean * g


@dataclass(frozen=True, eq=False)
class Lif:
    name: str
    neuron: str                   # "ternary" | "binary"
    leak_shift: int
    theta_pos: np.ndarray         # [C]: fire +1 when (MPBN(u) if mpbn else u) >= theta_pos
    theta_neg: np.ndarray         # [C]: fire -1 when ... <= theta_neg (ternary)
    amplitude: float = 1.0        # emits amplitude·s
    mpbn: BatchNorm | None = None


@dataclass(frozen=True, eq=False)
class Converted:
    """An if_subtract or msat neuron of a converted ANN (docs/msat.md); `fields` is its layer dict."""
    name: str
    neuron: str                   # "if_subtract" | "msat"
    channels: int
    fields: dict


@dataclass(frozen=True, eq=False)
class AvgPool:
    name: str
    kernel: int


@dataclass(frozen=True, eq=False)
class Flatten:
    name: str


@dataclass(frozen=True, eq=False)
class ChannelScale:
    """y = weight·x per channel: an identity shortcut (weight 1 until an amplitude folds into it)."""
    name: str
    weight: np.ndarray            # [C]


@dataclass(frozen=True, eq=False)
class Residual:
    name: str
    body: tuple
    shortcut: tuple               # output = body(x) + shortcut(x): (ChannelScale,) or (Conv 1×1, [BatchNorm])


@dataclass(frozen=True, eq=False)
class FloatNet:
    name: str
    input_shape: tuple[int, int, int]
    timesteps: int
    ops: tuple
    input_scale: float = 1 / 255      # x = pixel·input_scale, then (x − mean)/std
    input_mean: np.ndarray | None = None
    input_std: np.ndarray | None = None
    meta: dict = field(default_factory=dict)


WEIGHTED = (Conv, Linear)


# --------------------------------------------------------------------------- shapes


def op_out_shape(op, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of one op for an input of `shape` (one sample, no batch)."""
    if isinstance(op, Conv):
        if len(shape) != 3:
            raise ModelError(f"{where(op.name)}conv2d needs a (C, H, W) input, not {shape}")
        o, c, k, _ = op.weight.shape
        if c != shape[0]:
            raise ModelError(f"{where(op.name)}in_channels must be {shape[0]} (the input), not {c}")
        h = (shape[1] + 2 * op.padding - k) // op.stride + 1
        w = (shape[2] + 2 * op.padding - k) // op.stride + 1
        if h < 1 or w < 1:
            raise ModelError(f"{where(op.name)}kernel {k} does not fit the input {shape}")
        return (o, h, w)
    if isinstance(op, Linear):
        if len(shape) != 1:
            raise ModelError(f"{where(op.name)}linear needs a flat input (add a flatten before it), not {shape}")
        if op.weight.shape[1] != shape[0]:
            raise ModelError(f"{where(op.name)}in_features must be {shape[0]} (the input), not {op.weight.shape[1]}")
        return (op.weight.shape[0],)
    if isinstance(op, BatchNorm):
        if op.gamma.shape[0] != shape[0]:
            raise ModelError(f"{where(op.name)}num_features must be {shape[0]} (the input channels), not {op.gamma.shape[0]}")
        return shape
    if isinstance(op, Lif):
        if op.theta_pos.shape[0] != shape[0]:
            raise ModelError(f"{where(op.name)}has {op.theta_pos.shape[0]} channels, its input {shape[0]}")
        return shape
    if isinstance(op, Converted):
        return shape
    if isinstance(op, AvgPool):
        if len(shape) != 3 or shape[1] < op.kernel or shape[2] < op.kernel:
            raise ModelError(f"{where(op.name)}avgpool2d kernel {op.kernel} does not fit the input {shape}")
        return (shape[0], shape[1] // op.kernel, shape[2] // op.kernel)
    if isinstance(op, Flatten):
        return (int(np.prod(shape)),)
    if isinstance(op, ChannelScale):
        if op.weight.shape[0] != shape[0]:
            raise ModelError(f"{where(op.name)}the identity shortcut has {op.weight.shape[0]} channels, "
                             f"its input {shape[0]}")
        return shape
    if isinstance(op, Residual):
        out = sequence_out_shape(op.body, shape)
        skip = sequence_out_shape(op.shortcut, shape)
        if out != skip:
            kind = "identity" if isinstance(op.shortcut[0], ChannelScale) else "projection"
            raise ModelError(f"{where(op.name)}the body's output shape {out} must equal the {kind} shortcut's "
                             f"{skip} (the block input is {shape})")
        return out
    raise ModelError(f"{where(getattr(op, 'name', None))}unsupported op {op!r}")


def sequence_out_shape(ops, shape: tuple[int, ...]) -> tuple[int, ...]:
    for op in ops:
        shape = op_out_shape(op, shape)
    return shape


def input_shapes(ops, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The input shape of every op in a sequence."""
    shapes = []
    for op in ops:
        shapes.append(shape)
        shape = op_out_shape(op, shape)
    return shapes


def output_shape(net: FloatNet) -> tuple[int, ...]:
    shape = net.input_shape
    for op in net.ops:
        shape = op_out_shape(op, shape)
    return shape


# --------------------------------------------------------------------------- parsing


def _tensor(state: dict, layer: dict, param: str, shape: tuple[int, ...]) -> np.ndarray:
    key = f"{layer['name']}.{param}"
    if key not in state:
        raise ModelError(f"{where(layer['name'])}state_dict lacks {key!r}")
    value = state[key]
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    array = np.array(value, dtype=np.float64)
    if array.shape != tuple(shape):
        raise ModelError(f"{where(layer['name'])}{param} must have shape {list(shape)}, not {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ModelError(f"{where(layer['name'])}{param} holds NaN or infinite values")
    array.setflags(write=False)
    return array


def _int_field(layer: dict, key: str, minimum: int) -> int:
    value = layer.get(key)
    if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ModelError(f"{where(layer.get('name'))}{key} must be an int >= {minimum}, not {value!r}")
    return value


def _float_field(layer: dict, key: str) -> float:
    value = layer.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{where(layer.get('name'))}{key} must be a finite number, not {value!r}")
    return float(value)


def _batchnorm(state: dict, layer: dict, prefix: str, channels: int, eps: float) -> BatchNorm:
    p = f"{prefix}." if prefix else ""
    return BatchNorm(name=layer["name"], gamma=_tensor(state, layer, p + "weight", (channels,)),
                     beta=_tensor(state, layer, p + "bias", (channels,)),
                     mean=_tensor(state, layer, p + "running_mean", (channels,)),
                     var=_tensor(state, layer, p + "running_var", (channels,)), eps=eps)


def _parse_layer(layer, state: dict, shape: tuple[int, ...], names: set):
    if not isinstance(layer, dict):
        raise ModelError(f"every layer must be a dict, not {layer!r}")
    kind, name = layer.get("type"), layer.get("name")
    if not isinstance(name, str) or not name or not all(ch.isalnum() or ch == "_" for ch in name) or not name.isascii():
        raise ModelError(f"layer name must match [A-Za-z0-9_]+, not {name!r}")
    if name in names or name == "input":
        raise ModelError(f"layer names must be unique (and not 'input'), not {name!r} twice")
    names.add(name)
    if kind == "relu":
        # An ANN is the source of a conversion, not a model the hardware runs (docs/msat.md).
        raise ModelError(f"{where(name)}a 'relu' layer makes this an ANN, which is not built directly: convert it "
                         f"into an SNN first (python -m snn convert MODEL --method msat|if-subtract, docs/msat.md)")
    if kind not in SUPPORTED_LAYER_TYPES:
        raise ModelError(f"{where(name)}unsupported layer type {kind!r}; supported types: "
                         f"{', '.join(SUPPORTED_LAYER_TYPES)}")
    layer = {**LAYER_DEFAULTS[kind], **layer}
    if kind == "conv2d":
        o, c = _int_field(layer, "out_channels", 1), _int_field(layer, "in_channels", 1)
        k = _int_field(layer, "kernel_size", 1)
        weight = _tensor(state, layer, "weight", (o, c, k, k))
        bias = _tensor(state, layer, "bias", (o,)) if layer["bias"] else np.zeros(o)
        return Conv(name, weight, bias, _int_field(layer, "stride", 1), _int_field(layer, "padding", 0))
    if kind == "linear":
        o, i = _int_field(layer, "out_features", 1), _int_field(layer, "in_features", 1)
        weight = _tensor(state, layer, "weight", (o, i))
        bias = _tensor(state, layer, "bias", (o,)) if layer["bias"] else np.zeros(o)
        return Linear(name, weight, bias)
    if kind in ("batchnorm2d", "batchnorm1d"):
        eps = _float_field(layer, "eps")
        if eps < 0:
            raise ModelError(f"{where(name)}eps must be >= 0, not {eps!r}")
        want = 3 if kind == "batchnorm2d" else 1
        if len(shape) != want:
            raise ModelError(f"{where(name)}{kind} needs a {'(C, H, W)' if want == 3 else 'flat'} input, not {shape}")
        return _batchnorm(state, layer, "", _int_field(layer, "num_features", 1), eps)
    if kind == "lif":
        if layer["neuron"] not in ("ternary", "binary"):
            raise ModelError(f"{where(name)}neuron must be 'ternary' or 'binary', not {layer['neuron']!r}")
        v_th = _float_field(layer, "v_threshold")
        if v_th <= 0:
            raise ModelError(f"{where(name)}v_threshold must be > 0 (θ = 0.5·v_threshold), not {v_th!r}")
        channels = shape[0]
        theta = 0.5 * v_th
        amplitude = 1.0
        if layer["amplitude"]:
            amplitude = float(_tensor(state, layer, "amplitude", ()))
        mpbn = None
        if layer["mpbn"]:
            mpbn = _batchnorm(state, layer, "mpbn", channels, _float_field(layer, "mpbn_eps"))
        return Lif(name, layer["neuron"], _int_field(layer, "tau_shift", 0), np.full(channels, theta),
                   np.full(channels, -theta), amplitude, mpbn)
    if kind in CONVERTED_TYPES:
        fields = {k: v for k, v in LAYER_FIELDS[kind].items() if k != "lambda"}
        fields.update(layer)
        try:
            _check_converted(fields)
        except (ArchError, KeyError) as exc:
            raise ModelError(f"{where(name)}{exc}") from None
        return Converted(name, kind, shape[0], fields)
    if kind == "avgpool2d":
        return AvgPool(name, _int_field(layer, "kernel_size", 1))
    if kind == "flatten":
        return Flatten(name)
    body = layer.get("body")
    if not isinstance(body, list) or not body:
        raise ModelError(f"{where(name)}body must be a non-empty list of layers, not {body!r}")
    ops = _parse_sequence(body, state, shape, names)
    return Residual(name, tuple(ops), _parse_shortcut(layer, state, shape, names))


def _parse_shortcut(block: dict, state: dict, shape, names) -> tuple:
    """[] or absent: identity; else a 1×1 conv2d (no padding) and an optional batchnorm2d."""
    layers = block.get("shortcut", [])
    if not isinstance(layers, list):
        raise ModelError(f"{where(block['name'])}shortcut must be a list of layers, not {layers!r}")
    if not layers:
        return (ChannelScale(block["name"], np.ones(shape[0])),)
    kinds = [layer.get("type") if isinstance(layer, dict) else None for layer in layers]
    if kinds not in (["conv2d"], ["conv2d", "batchnorm2d"]):
        raise ModelError(f"{where(block['name'])}shortcut must be [] (identity), [conv2d] or "
                         f"[conv2d, batchnorm2d], not {kinds}")
    if len(shape) != 3:
        raise ModelError(f"{where(block['name'])}a projection shortcut needs a (C, H, W) input, not {shape}")
    ops = _parse_sequence(layers, state, shape, names)
    conv = ops[0]
    if conv.weight.shape[2] != 1 or conv.padding != 0:
        raise ModelError(f"{where(conv.name)}a shortcut conv2d must have kernel_size 1 and padding 0, not "
                         f"kernel_size {conv.weight.shape[2]} and padding {conv.padding}")
    return tuple(ops)


def _parse_sequence(layers, state, shape, names) -> list:
    ops = []
    for layer in layers:
        op = _parse_layer(layer, state, shape, names)
        shape = op_out_shape(op, shape)
        ops.append(op)
    return ops


def parse_checkpoint(ckpt: dict, name: str = "model") -> FloatNet:
    """A FloatNet from a checkpoint dict (docs/checkpoint.md); raises ModelError naming the layer."""
    arch = ckpt.get("arch")
    if not isinstance(arch, dict):
        raise ModelError(f"arch must be a dict, not {arch!r}")
    shape = arch.get("input_shape")
    if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ModelError(f"input_shape must be [C, H, W] of positive ints, not {shape!r}")
    shape = tuple(shape)
    timesteps = arch.get("timesteps")
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise ModelError(f"timesteps must be an int >= 1, not {timesteps!r}")
    mean = std = None
    norm = arch.get("input_normalization")
    if norm is not None:
        try:
            mean = np.asarray(norm["mean"], dtype=np.float64)
            std = np.asarray(norm["std"], dtype=np.float64)
        except (TypeError, KeyError, ValueError):
            raise ModelError(f"input_normalization must be None or {{'mean': [...], 'std': [...]}}, not {norm!r}") from None
        if mean.shape != (shape[0],) or std.shape != (shape[0],):
            raise ModelError(f"input_normalization mean and std must have one value per input channel ({shape[0]})")
        if not np.isfinite(mean).all() or not np.isfinite(std).all() or (std <= 0).any():
            raise ModelError(f"input_normalization std must be finite and > 0, mean finite; not {norm!r}")
    layers = arch.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelError(f"arch layers must be a non-empty list, not {layers!r}")
    state = ckpt.get("state_dict", {})
    ops = _parse_sequence(layers, state, shape, set())
    return FloatNet(name=name, input_shape=shape, timesteps=timesteps, ops=tuple(ops), input_mean=mean,
                    input_std=std, meta=dict(ckpt.get("meta") or {}))


# --------------------------------------------------------------------------- float semantics (torch float64)


@dataclass
class FloatResult:
    logits: np.ndarray                     # [N, K]: mean over T of the readout output
    spikes: dict[str, np.ndarray]          # lif name -> int8 [N, T, ...] (s, without amplitude)


def _t(array):
    import torch
    return torch.as_tensor(np.array(array, dtype=np.float64))


def _channel(values, ndim: int):
    return _t(values).reshape((1, -1) + (1,) * (ndim - 2))


def _pad(x, padding: int, pad_value):
    import torch
    if padding == 0:
        return x
    n, c, h, w = x.shape
    out = torch.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
    if pad_value is not None:
        out[:] = _channel(pad_value, 4)
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out


def _apply(op, x, timesteps: int, spikes: dict):
    """x: [T·N, ...] float64; returns the op's output of the same layout."""
    import torch
    import torch.nn.functional as F
    if isinstance(op, Conv):
        return F.conv2d(_pad(x, op.padding, op.pad_value), _t(op.weight), _t(op.bias), stride=op.stride)
    if isinstance(op, Linear):
        return x @ _t(op.weight).T + _t(op.bias)
    if isinstance(op, BatchNorm):
        g, h = op.scale_shift()
        return x * _channel(g, x.ndim) + _channel(h, x.ndim)
    if isinstance(op, AvgPool):
        return F.avg_pool2d(x, op.kernel)
    if isinstance(op, Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(op, ChannelScale):
        return x * _channel(op.weight, x.ndim)
    if isinstance(op, Residual):
        h, skip = x, x
        for inner in op.body:
            h = _apply(inner, h, timesteps, spikes)
        for inner in op.shortcut:
            skip = _apply(inner, skip, timesteps, spikes)
        return h + skip
    if isinstance(op, Lif):
        current = x.reshape((timesteps, -1) + tuple(x.shape[1:]))
        tau = 2.0 ** -op.leak_shift
        r = torch.zeros_like(current[0])
        out = []
        for t in range(timesteps):
            u = tau * r + current[t]
            v = u
            if op.mpbn is not None:
                g, h = op.mpbn.scale_shift()
                v = u * _channel(g, u.ndim) + _channel(h, u.ndim)
            pos = v >= _channel(op.theta_pos, u.ndim)
            s = pos.to(torch.float64)
            if op.neuron == "ternary":
                s = s - ((v <= _channel(op.theta_neg, u.ndim)) & ~pos).to(torch.float64)
            r = u * (1 - s.abs())
            out.append(s)
        s = torch.stack(out)
        spikes[op.name] = s.to(torch.int8).transpose(0, 1).numpy().copy()
        return (op.amplitude * s).reshape(x.shape)
    if isinstance(op, Converted):
        from snn.msat import IFSubtract, MSATNeuron
        current = x.reshape((timesteps, -1) + tuple(x.shape[1:]))
        neuron = (IFSubtract if op.neuron == "if_subtract" else MSATNeuron)(op.fields).double()
        s, amplitude = neuron.spikes(current)
        spikes[op.name] = s.to(torch.int8).transpose(0, 1).numpy().copy()
        return (s * amplitude).reshape(x.shape)
    raise ModelError(f"{where(getattr(op, 'name', None))}unsupported op {op!r}")


def run_float(net: FloatNet, images: np.ndarray) -> FloatResult:
    """Float64 semantics of a FloatNet on uint8 images [N, C, H, W] (SPEC §1)."""
    import torch
    images = np.asarray(images)
    x = _t(images.astype(np.float64)) * net.input_scale
    if net.input_mean is not None:
        x = (x - _channel(net.input_mean, 4)) / _channel(net.input_std, 4)
    x = x.unsqueeze(0).expand((net.timesteps,) + tuple(x.shape)).reshape((-1,) + tuple(x.shape[1:]))
    spikes: dict = {}
    with torch.no_grad():
        for op in net.ops:
            x = _apply(op, x, net.timesteps, spikes)
    logits = x.reshape((net.timesteps, images.shape[0], -1)).mean(0)
    return FloatResult(logits=logits.numpy().copy(), spikes=spikes)
