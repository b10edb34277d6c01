"""The integer IR: what the compiler hands to the golden model and to the hardware generator.

Integer-only frozen dataclasses (SPEC §3–4). Every array is a read-only numpy int64 array,
so a `Network` cannot change after it was validated. Constructors check everything a later
stage relies on (shapes, weight ranges, thresholds, topological order) and raise
TypeError/ValueError with "<name> must be <rule>, not <value!r>".

    Network(name, input_shape=(C,H,W), timesteps, wbits, layers=(Layer, ...))
    Layer(name, kind, shape, projections, bias, neuron, theta_pos, theta_neg, leak_shift, scale_exp)
    Projection(source, op, weight)           op: an entry of gen.ops: Conv2d(kernel, stride, padding,
                                             pad_value) | Dense() | Identity()

The file format (`save`/`load`, a `<stem>.json` + `<stem>.npz` pair) is documented in docs/ir.md.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from gen.ops import OPS, Conv2d, Dense, Identity, op_from_json, op_spec
from gen.ops.base import check_int as _check_int

__all__ = ["CONVERTED_NEURONS", "NeuronTables", "INPUT", "LAYER_KINDS", "MAX_LEAK_SHIFT", "MAX_TIMESTEPS", "MAX_WBITS", "NEURONS", "OPS", "Conv2d",
           "Dense", "Identity", "Layer", "Network", "Projection", "int_array", "op_from_json", "replace",
           "same_layer", "same_network"]

LAYER_KINDS = ("encoding", "spiking", "readout")
# ternary/binary: SPEC §4 (LIF, hard reset). if_subtract/msat: converted ANNs (docs/msat.md §3),
# whose extra state and tables a layer holds in `tables`.
NEURONS = ("ternary", "binary", "if_subtract", "msat")
CONVERTED_NEURONS = ("if_subtract", "msat")
MAX_LADDER_STEPS = 16
MAX_LUT_HALF = 4096
MAX_LUT_VALUE = 2 ** 40     # z = LUT_d + LUT_x stays far inside int64
MAX_TABLE_SHIFT = 62
INPUT = "input"  # the source name of the raw uint8 pixels
MAX_WBITS = 16  # weights wider than this have no place on the target; also keeps bounds in int64
MAX_LEAK_SHIFT = 16  # as snn.arch.MAX_TAU_SHIFT; int64 overflow is checked by gen.ir.bounds
# A convention, not a hardware limit: the engines size their step counters from T. 128 covers
# the MSAT protocol (docs/msat.md §5); larger T costs only simulation time.
MAX_TIMESTEPS = 128
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _check_shape(name: str, value) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) not in (1, 3):
        raise ValueError(f"{name} must be (C, H, W) or (F,), not {value!r}")
    return tuple(_check_int(f"{name}[{i}]", v, 1) for i, v in enumerate(value))


def int_array(name: str, value, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A read-only int64 copy of `value`; refuses floats, bools and anything that is not integral."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, not dtype {array.dtype}")
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must fit in int64")
    array = np.array(array, dtype=np.int64, copy=True)
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, not {array.shape}")
    array.setflags(write=False)
    return array


# --------------------------------------------------------------------------- operations
# The projection ops (their dataclasses, JSON form and what every stage asks of them) are
# entries of the registry in gen/ops/; the names are re-exported here for the IR's users.


# --------------------------------------------------------------------------- projections and layers


# eq=False: instances compare (and hash) by identity; `same_network` compares contents.
@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from one source spike map (or the input pixels) into a layer."""
    source: str
    op: object                  # an op registered in gen.ops (Conv2d, Dense, Identity, ...)
    weight: np.ndarray

    def __post_init__(self):
        if not isinstance(self.source, str) or not _NAME.match(self.source):
            raise ValueError(f"source must be a name matching [A-Za-z0-9_]+, not {self.source!r}")
        op_spec(self.op, f"projection from {self.source!r}: ")   # one error listing the registered ops
        object.__setattr__(self, "weight", int_array("weight", self.weight))

    def fan_in(self) -> int:
        """Synapses into one neuron of the layer (before border clipping)."""
        return op_spec(self.op).fan_in(self.op, self.weight)


@dataclass(frozen=True, eq=False)
class NeuronTables:
    """What a converted neuron adds to a layer (docs/msat.md §3–4).

    if_subtract: `amplitude` A [C] (subtracted on a spike), `signed` (−1 corrections on).
    msat: `ladder_steps` M, `lut_half` H, `lut_d`/`lut_x` [2H], `ladder_z` [M] (strictly
    decreasing), `d_shift`/`x_shift` [C] (the cell of d and I: floor(v / 2^shift)).
    """
    amplitude: np.ndarray | None = None
    signed: bool = False
    ladder_steps: int = 0
    lut_half: int = 0
    lut_d: np.ndarray | None = None
    lut_x: np.ndarray | None = None
    ladder_z: np.ndarray | None = None
    d_shift: np.ndarray | None = None
    x_shift: np.ndarray | None = None
    half_start: bool = False     # msat: R^{-1} = Θ >> 1 instead of 0

    ARRAYS = ("amplitude", "lut_d", "lut_x", "ladder_z", "d_shift", "x_shift")

    def check(self, where: str, neuron: str, channels: int) -> "NeuronTables":
        """A validated copy (read-only int64 arrays) for a layer of `channels` channels."""
        for flag in ("signed", "half_start"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{where}tables.{flag} must be a bool, not {getattr(self, flag)!r}")
        _check_int(f"{where}tables.ladder_steps", self.ladder_steps, 0, MAX_LADDER_STEPS)
        if neuron == "if_subtract":
            for field in self.ARRAYS[1:]:
                if getattr(self, field) is not None:
                    raise ValueError(f"{where}tables.{field} must be None for an if_subtract neuron")
            if self.ladder_steps != 0 or self.lut_half != 0 or self.half_start:
                raise ValueError(f"{where}tables.ladder_steps, lut_half and half_start must be 0 for an "
                                 "if_subtract neuron")
            amplitude = int_array(f"{where}tables.amplitude", self.amplitude, (channels,))
            if amplitude.size and int(amplitude.min()) < 1:
                raise ValueError(f"{where}tables.amplitude must be >= 1 in every channel, not {amplitude.tolist()!r}")
            return NeuronTables(amplitude=amplitude, signed=self.signed)
        if self.amplitude is not None or self.signed:
            raise ValueError(f"{where}tables.amplitude must be None and signed False for an msat neuron")
        m = _check_int(f"{where}tables.ladder_steps", self.ladder_steps, 1, MAX_LADDER_STEPS)
        h = _check_int(f"{where}tables.lut_half", self.lut_half, 1, MAX_LUT_HALF)
        arrays = {}
        for field, shape in (("lut_d", (2 * h,)), ("lut_x", (2 * h,)), ("ladder_z", (m,)),
                             ("d_shift", (channels,)), ("x_shift", (channels,))):
            arrays[field] = int_array(f"{where}tables.{field}", getattr(self, field), shape)
        for field in ("lut_d", "lut_x", "ladder_z"):
            if arrays[field].size and int(np.abs(arrays[field]).max()) > MAX_LUT_VALUE:
                raise ValueError(f"{where}tables.{field} must satisfy |v| <= 2^40, not {int(np.abs(arrays[field]).max())}")
        if m > 1 and not np.all(np.diff(arrays["ladder_z"]) < 0):
            raise ValueError(f"{where}tables.ladder_z must be strictly decreasing, not {arrays['ladder_z'].tolist()!r}")
        for field in ("d_shift", "x_shift"):
            if arrays[field].size and int(np.abs(arrays[field]).max()) > MAX_TABLE_SHIFT:
                raise ValueError(f"{where}tables.{field} must lie in [-{MAX_TABLE_SHIFT}, {MAX_TABLE_SHIFT}], "
                                 f"not {arrays[field].tolist()!r}")
        return NeuronTables(ladder_steps=m, lut_half=h, half_start=self.half_start, **arrays)


def same_tables(a: "NeuronTables | None", b: "NeuronTables | None") -> bool:
    if a is None or b is None:
        return a is b
    return ((a.signed, a.ladder_steps, a.lut_half, a.half_start) == (b.signed, b.ladder_steps, b.lut_half, b.half_start)
            and all(_same_array(getattr(a, f), getattr(b, f)) for f in NeuronTables.ARRAYS))


@dataclass(frozen=True, eq=False)
class Layer:
    name: str
    kind: str
    shape: tuple[int, ...]
    projections: tuple[Projection, ...]
    bias: np.ndarray
    neuron: str | None = None
    theta_pos: np.ndarray | None = None
    theta_neg: np.ndarray | None = None
    leak_shift: int = 0
    scale_exp: np.ndarray | None = None
    tables: NeuronTables | None = None   # converted neurons only (docs/msat.md)

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name) or self.name == INPUT:
            raise ValueError(f"layer name must match [A-Za-z0-9_]+ and not be {INPUT!r}, not {self.name!r}")
        where = f"layer {self.name!r}: "
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"{where}kind must be one of {LAYER_KINDS}, not {self.kind!r}")
        object.__setattr__(self, "shape", _check_shape(f"{where}shape", self.shape))
        if not isinstance(self.projections, tuple) or not self.projections:
            raise ValueError(f"{where}projections must be a non-empty tuple, not {self.projections!r}")
        for p in self.projections:
            if not isinstance(p, Projection):
                raise TypeError(f"{where}projections must hold Projection objects, not {p!r}")
        channels = self.shape[0]
        object.__setattr__(self, "bias", int_array(f"{where}bias", self.bias, (channels,)))
        _check_int(f"{where}leak_shift", self.leak_shift, 0, MAX_LEAK_SHIFT)
        if self.scale_exp is None:
            object.__setattr__(self, "scale_exp", int_array(f"{where}scale_exp", np.zeros(channels, np.int64)))
        else:
            object.__setattr__(self, "scale_exp", int_array(f"{where}scale_exp", self.scale_exp, (channels,)))
        if self.kind == "readout":
            for field in ("neuron", "theta_pos", "theta_neg", "tables"):
                if getattr(self, field) is not None:
                    raise ValueError(f"{where}{field} must be None for a readout, not {getattr(self, field)!r}")
            if len(set(self.scale_exp.tolist())) > 1:
                raise ValueError(f"{where}scale_exp must be one common value for a readout "
                                 f"(argmax needs one scale), not {self.scale_exp.tolist()!r}")
            return
        if self.neuron not in NEURONS:
            raise ValueError(f"{where}neuron must be one of {NEURONS}, not {self.neuron!r}")
        object.__setattr__(self, "theta_pos", int_array(f"{where}theta_pos", self.theta_pos, (channels,)))
        if self.neuron in CONVERTED_NEURONS:
            self._check_converted(where, channels)
        elif self.tables is not None:
            raise ValueError(f"{where}tables must be None for a {self.neuron} neuron")
        if self.neuron in ("binary", "msat"):
            if self.theta_neg is not None:
                raise ValueError(f"{where}theta_neg must be None for a {self.neuron} neuron, not {self.theta_neg!r}")
        else:
            object.__setattr__(self, "theta_neg", int_array(f"{where}theta_neg", self.theta_neg, (channels,)))
            bad = np.flatnonzero(self.theta_neg >= self.theta_pos)
            if bad.size:
                c = int(bad[0])
                raise ValueError(f"{where}theta_neg must be < theta_pos in every channel, not "
                                 f"{int(self.theta_neg[c])} >= {int(self.theta_pos[c])} in channel {c}")

    def _check_converted(self, where: str, channels: int) -> None:
        if self.leak_shift != 0:
            raise ValueError(f"{where}leak_shift must be 0 for an {self.neuron} neuron (IF: no leak), "
                             f"not {self.leak_shift}")
        if not isinstance(self.tables, NeuronTables):
            raise TypeError(f"{where}tables must be a NeuronTables for an {self.neuron} neuron, not {self.tables!r}")
        tables = self.tables.check(where, self.neuron, channels)
        object.__setattr__(self, "tables", tables)
        if self.neuron == "msat":
            step = 1 << tables.ladder_steps
            bad = np.flatnonzero((self.theta_pos < step) | (self.theta_pos % step != 0))
            if bad.size:
                c = int(bad[0])
                raise ValueError(f"{where}theta_pos must be a positive multiple of 2^ladder_steps = {step} "
                                 f"(Θ >> m exact), not {int(self.theta_pos[c])} in channel {c}")

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class Network:
    name: str
    input_shape: tuple[int, int, int]
    timesteps: int
    wbits: int
    layers: tuple[Layer, ...]

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, not {self.name!r}")
        shape = _check_shape("input_shape", self.input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), not {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        _check_int("timesteps", self.timesteps, 1, MAX_TIMESTEPS)
        _check_int("wbits", self.wbits, 2, MAX_WBITS)
        if not isinstance(self.layers, tuple) or len(self.layers) < 2:
            raise ValueError(f"layers must be a tuple of at least 2 layers (encoding ... readout), not {self.layers!r}")
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"layers must hold Layer objects, not {layer!r}")
        kinds = [layer.kind for layer in self.layers]
        if kinds[0] != "encoding" or kinds[-1] != "readout" or any(k != "spiking" for k in kinds[1:-1]):
            raise ValueError(f"layer kinds must be encoding, spiking..., readout, not {kinds!r}")
        wmax = 2 ** (self.wbits - 1) - 1
        shapes = {INPUT: shape}
        for layer in self.layers:
            if layer.name in shapes:
                raise ValueError(f"layer names must be unique, not {layer.name!r} twice")
            self._check_projections(layer, shapes, wmax)
            shapes[layer.name] = layer.shape

    def _check_projections(self, layer: Layer, shapes: dict, wmax: int) -> None:
        where = f"layer {layer.name!r}: "
        for i, p in enumerate(layer.projections):
            pw = f"{where}projection {i} (from {p.source!r}): "
            if layer.kind == "encoding" and p.source != INPUT:
                raise ValueError(f"{pw}source must be {INPUT!r} for the encoding layer")
            if layer.kind != "encoding" and p.source == INPUT:
                raise ValueError(f"{pw}source must be an earlier layer: only the encoding layer sees the pixels")
            if p.source not in shapes:
                raise ValueError(f"{pw}source must name an earlier layer (topological order), "
                                 f"one of {sorted(shapes)}, not {p.source!r}")
            src = shapes[p.source]
            expected = p.op.weight_shape(layer.channels, src)
            if p.weight.shape != expected:
                raise ValueError(f"{pw}weight must have shape {expected}, not {p.weight.shape}")
            out = p.op.out_shape(layer.channels, src)
            if tuple(out) != layer.shape:
                raise ValueError(f"{pw}output shape must equal the layer shape {layer.shape}, not {tuple(out)}")
            try:
                op_spec(p.op).check(p.op, source_is_input=p.source == INPUT, source_shape=src)
            except ValueError as exc:
                raise ValueError(f"{pw}{exc}") from None
            if p.weight.size and int(np.abs(p.weight).max()) > wmax:
                raise ValueError(f"{pw}weights must satisfy |W| <= {wmax} (wbits={self.wbits}), "
                                 f"not {int(np.abs(p.weight).max())}")

    # ---- lookups
    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers are {[l.name for l in self.layers]}")

    def source_shape(self, source: str) -> tuple[int, ...]:
        return self.input_shape if source == INPUT else self.layer(source).shape

    @property
    def readout(self) -> Layer:
        return self.layers[-1]

    @property
    def num_classes(self) -> int:
        return self.readout.shape[0]


def _same_array(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.shape == b.shape
                                          and np.array_equal(a, b))


def same_layer(a: Layer, b: Layer) -> bool:
    if (a.name, a.kind, a.shape, a.neuron, a.leak_shift) != (b.name, b.kind, b.shape, b.neuron, b.leak_shift):
        return False
    if not all(_same_array(getattr(a, f), getattr(b, f)) for f in ("bias", "theta_pos", "theta_neg", "scale_exp")):
        return False
    if not same_tables(a.tables, b.tables):
        return False
    return len(a.projections) == len(b.projections) and all(
        p.source == q.source and p.op == q.op and _same_array(p.weight, q.weight)
        for p, q in zip(a.projections, b.projections))


def same_network(a: Network, b: Network) -> bool:
    """True when two networks hold the same structure and the same integers."""
    return ((a.name, a.input_shape, a.timesteps, a.wbits) == (b.name, b.input_shape, b.timesteps, b.wbits)
            and len(a.layers) == len(b.layers) and all(same_layer(x, y) for x, y in zip(a.layers, b.layers)))


def replace(obj, **changes):
    """dataclasses.replace, re-running validation."""
    return dataclasses.replace(obj, **changes)
