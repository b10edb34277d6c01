"""The architecture description (docs/checkpoint.md): validation, defaults, shapes.

Pure Python, no torch: the compiler (`gen/`) reads every model through this module, so the
rules that decide what a valid model is live in one place. `normalize_arch` returns a
complete copy (every optional field filled in) that both sides read the same way;
`expected_parameters` says which state_dict entries, of which shapes, an arch needs.
"""
from __future__ import annotations

import copy
import math
import re
from typing import Any

NAME_PATTERN = re.compile(r"[A-Za-z0-9_]+")
NEURONS = ("ternary", "binary")

# type -> {field: default}; a field whose default is _REQUIRED must be given.
_REQUIRED = object()
LAYER_FIELDS: dict[str, dict[str, Any]] = {
    "conv2d": {"in_channels": _REQUIRED, "out_channels": _REQUIRED, "kernel_size": _REQUIRED,
               "stride": 1, "padding": 0, "bias": True},
    "linear": {"in_features": _REQUIRED, "out_features": _REQUIRED, "bias": True},
    "batchnorm2d": {"num_features": _REQUIRED, "eps": 1e-5},
    "batchnorm1d": {"num_features": _REQUIRED, "eps": 1e-5},
    "lif": {"neuron": "ternary", "tau_shift": 2, "v_threshold": 1.0, "amplitude": False,
            "mpbn": False, "mpbn_eps": 1e-5},
    "avgpool2d": {"kernel_size": _REQUIRED},
    "flatten": {},
    "residual": {"body": _REQUIRED, "shortcut": []},  # shortcut [] = identity
    # ANN -> SNN conversion (docs/msat.md): the ANN's activation, and the two converted neurons.
    # The converted layers' weights are already normalised by the calibrated lambda of each
    # layer (so their spike amplitude is 1); `lambda` records it, every hyperparameter is kept.
    "relu": {},
    "if_subtract": {"lambda": _REQUIRED, "signed": True},
    "msat": {"lambda": _REQUIRED, "rule": "sigmoid", "use_dtt": True, "use_det": True,
             "alpha": 0.3, "ka": 1.0, "ki": 1.0, "C": 5.0, "tau_mp": 0.2, "tau_rd": 0.1,
             "ladder_steps": 0, "d_bits": 3, "x_bits": 3, "lut_half": 32, "z_bits": 8,
             "half_start": False},
}
# Activations: a spiking neuron (lif, or a converted neuron), or an ANN's ReLU.
SPIKING_LAYER_TYPES = ("lif", "if_subtract", "msat")
ACTIVATION_LAYER_TYPES = (*SPIKING_LAYER_TYPES, "relu")
# the authors' float threshold, Tern's integer ladder, or the constant-λ baseline (VthHand = 1)
MSAT_RULES = ("sigmoid", "ladder", "constant")
MAX_LADDER_STEPS = 16
SUPPORTED_LAYER_TYPES = tuple(LAYER_FIELDS)
CURRENT_LAYER_TYPES = ("conv2d", "linear", "batchnorm2d", "batchnorm1d")
MAX_TAU_SHIFT = 16  # tau = 2^-16 is already no leak worth modelling; bounds register widths

# Size limits (docs/checkpoint.md), checked before anything is allocated: a file must not be
# able to make a reader reserve gigabytes. Each admits far more than any model Tern ships or
# tests (MNIST nets, CIFAR/ImageNet-sized ResNets) and refuses the absurd.
MAX_TIMESTEPS = 128           # as gen.ir.MAX_TIMESTEPS (a convention: the engines size their step counters from T)
MAX_SIDE = 2048               # input height/width, conv stride and padding (ImageNet is 224)
MAX_CHANNELS = 4096           # input and conv channels (ResNets use <= 2048)
MAX_KERNEL = 64               # conv kernel_size
MAX_LAYER_NEURONS = 2 ** 22   # values one layer outputs per image and timestep (C·H·W, or features)
MAX_LAYER_WEIGHTS = 2 ** 24   # weights of one conv or linear layer (16.8 M; float32: 64 MiB)
MAX_LAYERS = 4096             # layer dicts in one arch, residual bodies and shortcuts included


class ArchError(ValueError):
    """An architecture description that Tern cannot build."""


def _where(layer: dict, field: str | None = None) -> str:
    name = layer.get("name", "?") if isinstance(layer, dict) else "?"
    return f"layer {name!r}" + (f" field {field!r}" if field else "")


def _check_int(layer: dict, field: str, minimum: int, maximum: int) -> None:
    value = layer[field]
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ArchError(f"{_where(layer, field)} must be an int between {minimum} and {maximum}, not {value!r}")


def _check_bool(layer: dict, field: str) -> None:
    if not isinstance(layer[field], bool):
        raise ArchError(f"{_where(layer, field)} must be a bool, not {layer[field]!r}")


def _check_positive_float(layer: dict, field: str) -> None:
    value = layer[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ArchError(f"{_where(layer, field)} must be a finite number > 0, not {value!r}")
    layer[field] = float(value)


def _normalize_layer(layer: Any, names: set[str]) -> dict:
    if not isinstance(layer, dict):
        raise ArchError(f"every layer must be a dict, not {layer!r}")
    kind = layer.get("type")
    if kind not in LAYER_FIELDS:
        raise ArchError(f"{_where(layer)} has unknown type {kind!r}; "
                        f"supported types: {', '.join(SUPPORTED_LAYER_TYPES)}")
    name = layer.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ArchError(f"layer name must match [A-Za-z0-9_]+, not {name!r}")
    if name in names:
        raise ArchError(f"layer name must be unique, not {name!r} a second time")
    names.add(name)
    fields = LAYER_FIELDS[kind]
    unknown = sorted(set(layer) - set(fields) - {"name", "type"})
    if unknown:
        raise ArchError(f"{_where(layer)} ({kind}) has unknown fields {unknown}; "
                        f"its fields are {sorted(fields)}")
    out = {"name": name, "type": kind}
    for field, default in fields.items():
        if field in layer:
            out[field] = copy.deepcopy(layer[field])
        elif default is _REQUIRED:
            raise ArchError(f"{_where(layer)} ({kind}) needs field {field!r}")
        else:
            out[field] = default
    _check_fields(out, names)
    return out


def _check_fields(layer: dict, names: set[str]) -> None:
    kind = layer["type"]
    if kind == "conv2d":
        for field in ("in_channels", "out_channels"):
            _check_int(layer, field, 1, MAX_CHANNELS)
        _check_int(layer, "kernel_size", 1, MAX_KERNEL)
        _check_int(layer, "stride", 1, MAX_SIDE)
        _check_int(layer, "padding", 0, MAX_SIDE)
        _check_bool(layer, "bias")
    elif kind == "linear":
        _check_int(layer, "in_features", 1, MAX_LAYER_NEURONS)
        _check_int(layer, "out_features", 1, MAX_LAYER_NEURONS)
        _check_bool(layer, "bias")
    elif kind in ("batchnorm2d", "batchnorm1d"):
        _check_int(layer, "num_features", 1, MAX_LAYER_NEURONS)
        _check_positive_float(layer, "eps")
    elif kind == "lif":
        if layer["neuron"] not in NEURONS:
            raise ArchError(f"{_where(layer, 'neuron')} must be one of {list(NEURONS)}, not {layer['neuron']!r}")
        _check_int(layer, "tau_shift", 0, MAX_TAU_SHIFT)
        _check_positive_float(layer, "v_threshold")
        _check_bool(layer, "amplitude")
        _check_bool(layer, "mpbn")
        _check_positive_float(layer, "mpbn_eps")
    elif kind == "avgpool2d":
        _check_int(layer, "kernel_size", 1, MAX_SIDE)
    elif kind in ("if_subtract", "msat"):
        _check_converted(layer)
    elif kind == "residual":
        body = layer["body"]
        if not isinstance(body, list) or not body:
            raise ArchError(f"{_where(layer, 'body')} must be a non-empty list of layer dicts, not {body!r}")
        layer["body"] = [_normalize_layer(inner, names) for inner in body]
        if layer["body"][-1]["type"] not in CURRENT_LAYER_TYPES:
            raise ArchError(f"{_where(layer, 'body')} must end in a current "
                            f"({', '.join(CURRENT_LAYER_TYPES)}), not {layer['body'][-1]['type']!r}")
        if any(inner["type"] == "residual" for inner in layer["body"]):
            raise ArchError(f"{_where(layer, 'body')} must not contain another residual block")
        layer["shortcut"] = _normalize_shortcut(layer, names)


def _check_converted(layer: dict) -> None:
    """The fields of a converted neuron (docs/msat.md); every number finite."""
    _check_positive_float(layer, "lambda")
    if layer["type"] == "if_subtract":
        _check_bool(layer, "signed")
        return
    if layer["rule"] not in MSAT_RULES:
        raise ArchError(f"{_where(layer, 'rule')} must be one of {list(MSAT_RULES)}, not {layer['rule']!r}")
    for field in ("use_dtt", "use_det", "half_start"):
        _check_bool(layer, field)
    if not (layer["use_dtt"] or layer["use_det"]):
        raise ArchError(f"{_where(layer)}: an msat neuron needs use_dtt or use_det (a constant threshold "
                        "is if_subtract with signed false, or msat with ladder_steps 0)")
    for field in ("alpha", "tau_mp", "tau_rd"):
        value = layer[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ArchError(f"{_where(layer, field)} must be a finite number, not {value!r}")
        layer[field] = float(value)
    for field in ("ka", "ki", "C"):
        _check_positive_float(layer, field)
    _check_int(layer, "ladder_steps", 0, MAX_LADDER_STEPS)
    for field in ("d_bits", "x_bits"):
        _check_int(layer, field, 0, 16)
    _check_int(layer, "lut_half", 1, 4096)
    _check_int(layer, "z_bits", 0, 24)
    if layer["rule"] == "ladder" and layer["ladder_steps"] < 1:
        raise ArchError(f"{_where(layer, 'ladder_steps')} must be >= 1 for rule 'ladder', not {layer['ladder_steps']}")


def _normalize_shortcut(block: dict, names: set[str]) -> list[dict]:
    """A projection shortcut is a 1x1 conv2d (any stride, no padding) and an optional batchnorm2d.

    The hardware runs it as one more projection into the block's LIF, so nothing that
    would need a second spiking stage (a lif, a pool, a wider kernel) may appear in it.
    """
    shortcut = block["shortcut"]
    if not isinstance(shortcut, list) or len(shortcut) > 2:
        raise ArchError(f"{_where(block, 'shortcut')} must be [] (identity) or a list [conv2d] or "
                        f"[conv2d, batchnorm2d], not {shortcut!r}")
    layers = [_normalize_layer(inner, names) for inner in shortcut]
    kinds = [inner["type"] for inner in layers]
    if kinds and kinds not in (["conv2d"], ["conv2d", "batchnorm2d"]):
        raise ArchError(f"{_where(block, 'shortcut')} must be [conv2d] or [conv2d, batchnorm2d], not {kinds}")
    if layers:
        conv = layers[0]
        if conv["kernel_size"] != 1 or conv["padding"] != 0:
            raise ArchError(f"{_where(conv)}: a shortcut conv2d must have kernel_size 1 and padding 0, not "
                            f"kernel_size {conv['kernel_size']} and padding {conv['padding']}")
    return layers


def _check_input_normalization(norm: Any, channels: int) -> None:
    if norm is None:
        return
    if not isinstance(norm, dict) or set(norm) != {"mean", "std"}:
        raise ArchError(f"input_normalization must be None or a dict with 'mean' and 'std', not {norm!r}")
    for key in ("mean", "std"):
        values = norm[key]
        if (not isinstance(values, list) or len(values) != channels
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)):
            raise ArchError(f"input_normalization[{key!r}] must be a list of {channels} finite numbers, not {values!r}")
    if any(v <= 0 for v in norm["std"]):
        raise ArchError(f"input_normalization['std'] must be > 0 everywhere, not {norm['std']!r}")


def normalize_arch(arch: Any) -> dict:
    """A validated, complete deep copy of `arch` (defaults filled in); raises ArchError."""
    if not isinstance(arch, dict):
        raise ArchError(f"arch must be a dict, not {type(arch).__name__}")
    unknown = sorted(set(arch) - {"input_shape", "timesteps", "input_normalization", "layers"})
    if unknown:
        raise ArchError(f"arch has unknown keys {unknown}; its keys are "
                        "['input_normalization', 'input_shape', 'layers', 'timesteps']")
    shape = arch.get("input_shape")
    _check_input_shape(shape)
    timesteps = arch.get("timesteps")
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or not 1 <= timesteps <= MAX_TIMESTEPS:
        raise ArchError(f"timesteps must be an int between 1 and {MAX_TIMESTEPS}, not {timesteps!r}")
    norm = copy.deepcopy(arch.get("input_normalization"))
    _check_input_normalization(norm, shape[0])
    layers = arch.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ArchError(f"layers must be a non-empty list of layer dicts, not {layers!r}")
    if len(layers) > MAX_LAYERS:
        raise ArchError(f"layers must hold at most {MAX_LAYERS} layers, not {len(layers)}")
    names: set[str] = set()
    out = {"input_shape": list(shape), "timesteps": timesteps, "input_normalization": norm,
           "layers": [_normalize_layer(layer, names) for layer in layers]}
    if len(names) > MAX_LAYERS:
        raise ArchError(f"layers must hold at most {MAX_LAYERS} layers (residual bodies and shortcuts "
                        f"included), not {len(names)}")
    infer_shapes(out, _normalized=True)
    _check_weights(out)
    _check_structure(out["layers"])
    return out


def _check_input_shape(shape: Any) -> None:
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)):
        raise ArchError(f"input_shape must be a list [C, H, W] of ints >= 1, not {shape!r}")
    if shape[0] > MAX_CHANNELS or shape[1] > MAX_SIDE or shape[2] > MAX_SIDE:
        raise ArchError(f"input_shape {shape} is too large: at most {MAX_CHANNELS} channels and "
                        f"{MAX_SIDE}x{MAX_SIDE} pixels")
    if math.prod(shape) > MAX_LAYER_NEURONS:
        raise ArchError(f"input_shape {shape} is too large: {math.prod(shape):,} values per image, "
                        f"the limit is {MAX_LAYER_NEURONS:,}")


def _check_weights(arch: dict) -> None:
    """Every layer's weights within the limit (outputs are checked as their shapes are inferred)."""
    for key, shape in expected_parameters(arch).items():
        if math.prod(shape) > MAX_LAYER_WEIGHTS:
            name = key.rpartition(".")[0]
            raise ArchError(f"layer {name!r} has {math.prod(shape):,} weights ({key} {list(shape)}); "
                            f"the limit is {MAX_LAYER_WEIGHTS:,} per layer")


def _check_structure(layers: list[dict]) -> None:
    """Rules that make a model an SNN the hardware can run (docs/checkpoint.md)."""
    if not any(layer["type"] in ACTIVATION_LAYER_TYPES for layer in layers):
        raise ArchError("layers must contain at least one 'lif' (a network without spikes is not an SNN)")
    kinds = {layer["type"] for layer in iter_layers({"layers": layers}) if layer["type"] in ACTIVATION_LAYER_TYPES}
    if len(kinds) > 1 and "relu" in kinds:
        raise ArchError(f"an ANN ('relu') must not mix its activations with spiking neurons, not {sorted(kinds)}")
    last = layers[-1]
    readout = layers[-2] if last["type"] == "batchnorm1d" and len(layers) > 1 else last
    if readout["type"] != "linear":
        raise ArchError(f"the last layer must be the readout, a 'linear' (+ optional 'batchnorm1d') with no "
                        f"'lif' after it, not {last['type']!r} ({last['name']!r})")
    for i, layer in enumerate(layers):
        if layer["type"] != "residual":
            continue
        if i == 0 or layers[i - 1]["type"] not in ACTIVATION_LAYER_TYPES:
            raise ArchError(f"{_where(layer)}: a residual block must take a spike map (follow a 'lif')")
        if i + 1 >= len(layers) or layers[i + 1]["type"] not in ACTIVATION_LAYER_TYPES:
            raise ArchError(f"{_where(layer)}: a residual block must be followed by a 'lif'")


def _layer_output_shape(layer: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The layer's output shape, refused if it holds more than MAX_LAYER_NEURONS values."""
    out = _unchecked_output_shape(layer, shape)
    if math.prod(out) > MAX_LAYER_NEURONS:
        raise ArchError(f"{_where(layer)} outputs {math.prod(out):,} values per image (shape {list(out)}); "
                        f"the limit is {MAX_LAYER_NEURONS:,}")
    return out


def _unchecked_output_shape(layer: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
    kind = layer["type"]
    if kind in ("conv2d", "batchnorm2d", "avgpool2d", "flatten") and len(shape) != 3:
        raise ArchError(f"{_where(layer)} ({kind}) needs a [C, H, W] input, not shape {list(shape)}")
    if kind in ("linear", "batchnorm1d") and len(shape) != 1:
        raise ArchError(f"{_where(layer)} ({kind}) needs a flat [F] input (add a 'flatten'), not shape {list(shape)}")
    if kind == "conv2d":
        c, h, w = shape
        if layer["in_channels"] != c:
            raise ArchError(f"{_where(layer, 'in_channels')} must be {c} (the input has {c} channels), "
                            f"not {layer['in_channels']!r}")
        k, s, p = layer["kernel_size"], layer["stride"], layer["padding"]
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if oh < 1 or ow < 1:
            raise ArchError(f"{_where(layer)}: kernel {k} does not fit the {h}x{w} input with padding {p}")
        return (layer["out_channels"], oh, ow)
    if kind == "linear":
        if layer["in_features"] != shape[0]:
            raise ArchError(f"{_where(layer, 'in_features')} must be {shape[0]} (the input size), "
                            f"not {layer['in_features']!r}")
        return (layer["out_features"],)
    if kind in ("batchnorm2d", "batchnorm1d"):
        if layer["num_features"] != shape[0]:
            raise ArchError(f"{_where(layer, 'num_features')} must be {shape[0]} (the input channels), "
                            f"not {layer['num_features']!r}")
        return shape
    if kind == "avgpool2d":
        c, h, w = shape
        k = layer["kernel_size"]
        if h < k or w < k:
            raise ArchError(f"{_where(layer)}: pooling window {k} is larger than the {h}x{w} input")
        return (c, h // k, w // k)
    if kind == "flatten":
        return (shape[0] * shape[1] * shape[2],)
    if kind in ACTIVATION_LAYER_TYPES:
        return shape
    if kind == "residual":
        inner = shape
        for body_layer in layer["body"]:
            inner = _layer_output_shape(body_layer, inner)
        if not layer["shortcut"]:
            if inner != shape:
                raise ArchError(f"{_where(layer)}: the body turns shape {list(shape)} into {list(inner)}; "
                                "an identity shortcut needs them equal (or give a projection 'shortcut')")
            return shape
        if len(shape) != 3:
            raise ArchError(f"{_where(layer, 'shortcut')}: a projection shortcut needs a [C, H, W] input, "
                            f"not shape {list(shape)}")
        projected = shape
        for shortcut_layer in layer["shortcut"]:
            projected = _layer_output_shape(shortcut_layer, projected)
        if projected != inner:
            raise ArchError(f"{_where(layer, 'shortcut')} turns the block input {list(shape)} into "
                            f"{list(projected)}, but the body gives {list(inner)}; they must be equal")
        return inner
    raise ArchError(f"{_where(layer)} has unknown type {kind!r}")  # unreachable after normalisation


def infer_shapes(arch: dict, _normalized: bool = False) -> dict[str, tuple[int, ...]]:
    """Output shape (per image, no T or batch) of every layer, body layers included."""
    if not _normalized:
        arch = normalize_arch(arch)
    shapes: dict[str, tuple[int, ...]] = {}
    shape = tuple(arch["input_shape"])
    for layer in arch["layers"]:
        if layer["type"] == "residual":
            for branch in ("body", "shortcut"):
                inner = shape
                for branch_layer in layer[branch]:
                    inner = _layer_output_shape(branch_layer, inner)
                    shapes[branch_layer["name"]] = inner
        shape = _layer_output_shape(layer, shape)
        shapes[layer["name"]] = shape
    return shapes


def iter_layers(arch: dict):
    """Every layer dict in order; a residual block's body, then its shortcut, right after it."""
    for layer in arch["layers"]:
        yield layer
        if layer["type"] == "residual":
            yield from layer["body"]
            yield from layer["shortcut"]


def _input_shapes(arch: dict) -> dict[str, tuple[int, ...]]:
    shapes = infer_shapes(arch, _normalized=True)
    inputs: dict[str, tuple[int, ...]] = {}
    shape = tuple(arch["input_shape"])
    for layer in arch["layers"]:
        inputs[layer["name"]] = shape
        if layer["type"] == "residual":
            for branch in ("body", "shortcut"):
                inner = shape
                for branch_layer in layer[branch]:
                    inputs[branch_layer["name"]] = inner
                    inner = shapes[branch_layer["name"]]
        shape = shapes[layer["name"]]
    return inputs


def expected_parameters(arch: dict) -> dict[str, tuple[int, ...]]:
    """state_dict key -> shape that a normalised arch needs (docs/checkpoint.md)."""
    inputs = _input_shapes(arch)
    params: dict[str, tuple[int, ...]] = {}
    for layer in iter_layers(arch):
        name, kind = layer["name"], layer["type"]
        if kind == "conv2d":
            k = layer["kernel_size"]
            params[f"{name}.weight"] = (layer["out_channels"], layer["in_channels"], k, k)
            if layer["bias"]:
                params[f"{name}.bias"] = (layer["out_channels"],)
        elif kind == "linear":
            params[f"{name}.weight"] = (layer["out_features"], layer["in_features"])
            if layer["bias"]:
                params[f"{name}.bias"] = (layer["out_features"],)
        elif kind in ("batchnorm2d", "batchnorm1d"):
            for param in ("weight", "bias", "running_mean", "running_var"):
                params[f"{name}.{param}"] = (layer["num_features"],)
        elif kind == "lif":
            if layer["amplitude"]:
                params[f"{name}.amplitude"] = ()
            if layer["mpbn"]:
                channels = inputs[name][0]
                for param in ("weight", "bias", "running_mean", "running_var"):
                    params[f"{name}.mpbn.{param}"] = (channels,)
    return params


# PyTorch's BatchNorm also keeps a step counter; Tern does not write it but tolerates it on read.
OPTIONAL_PARAMETER_SUFFIXES = ("num_batches_tracked",)


def is_optional_parameter(arch: dict, key: str) -> bool:
    """True for a BatchNorm `num_batches_tracked` counter of a layer in `arch`."""
    prefix, _, suffix = key.rpartition(".")
    if suffix not in OPTIONAL_PARAMETER_SUFFIXES:
        return False
    bn_prefixes = set()
    for layer in iter_layers(arch):
        if layer["type"] in ("batchnorm2d", "batchnorm1d"):
            bn_prefixes.add(layer["name"])
        elif layer["type"] == "lif" and layer["mpbn"]:
            bn_prefixes.add(f"{layer['name']}.mpbn")
    return prefix in bn_prefixes
