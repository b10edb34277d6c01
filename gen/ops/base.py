"""What every IR projection op tells the compiler (the interface of an entry in gen.ops).

An op is two things in one module of gen/ops/: the frozen IR dataclass (its fields are its
JSON form) and an `OpSpec` subclass instance named SPEC that answers, for that op, what the
IR validation, the golden model, the bounds, the plan and the emitter ask. The registry
(gen/ops/__init__.py) finds every module here that defines SPEC; nothing outside
gen/ops/ tests an op's type.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gen.errors import ModelError, PlanError


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as an int in [lo, hi]; TypeError/ValueError "<name> must be <rule>, not <value!r>"."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    value = int(value)
    if lo is not None and value < lo or hi is not None and value > hi:
        rule = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {rule}, not {value!r}")
    return value


@dataclass(frozen=True)
class Geometry:
    """One projection's geometry in plain ints, as the plan and the engines see it.

    `fan_in`: weights per output channel (one weight memory row block); `out_positions`:
    output neurons per channel (the words of a lane's current memory per channel group).
    """
    op: str                         # the registry name of the op
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    fan_in: int
    out_positions: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    def to_json(self) -> dict:
        return {"op": self.op, "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
                "kernel": self.kernel, "stride": self.stride, "padding": self.padding,
                "fan_in": self.fan_in, "out_positions": self.out_positions}


def full_map(shape, value) -> np.ndarray:
    """A batch of one source map holding `value` everywhere."""
    return np.full((1,) + tuple(shape), value, dtype=np.int64)


class OpSpec:
    """The registry entry of one projection op. Subclasses set the class attributes and
    implement `project` and `fanout` (and, for ops the engines take, `plan_geometry` and
    `hw_geometry`)."""

    name: str = ""                  # the IR JSON "type"
    op_class: type = object         # the frozen IR dataclass
    hardware: bool = False          # the engines take it (gen.plan refuses it otherwise)
    decoder_dsps: int = 0           # multipliers of the engine's event decoder for this op

    # ---- IR
    def from_json(self, fields: dict):
        """The op from its JSON fields (without "type"); the dataclass validates them."""
        return self.op_class(**fields)

    def check(self, op, *, source_is_input: bool, source_shape: tuple[int, ...]) -> None:
        """Rules that need the projection's context (raise ValueError "<field> must ...")."""

    def fan_in(self, op, weight: np.ndarray) -> int:
        """Synapses into one neuron of the layer (before border clipping)."""
        return int(np.prod(weight.shape[1:]))

    # ---- golden model
    def project(self, op, weight: np.ndarray, x: np.ndarray) -> np.ndarray:
        """W ⋆ x without bias: int [N, *source shape] -> int64 [N, *out shape], exactly."""
        raise NotImplementedError

    def fanout(self, op, weight: np.ndarray, source_shape, out_shape) -> np.ndarray:
        """Synapses leaving each source neuron (border clipping counted), int64 [*source shape]."""
        raise NotImplementedError

    def torch_project(self, op, weight, x):
        """The same projection in torch float64 (gen.ir.reference's independent formulation)."""
        raise NotImplementedError

    def nir_nodes(self, op, weight: np.ndarray, bias: np.ndarray, source_shape, out_shape, node: str,
                  where: str) -> list:
        """The NIR nodes of this projection (gen.backend.nir_export), a chain from the source to the
        last one, which is named `node`: [(name, nir node), ...]. `weight` and `bias` are
        the fake-quantised floats."""
        raise ModelError(f"{where}projection op {self.name} has no NIR node")

    # ---- bounds
    def accumulator_op(self, op):
        """The op whose projection of a constant map bounds the accumulator's partial sums
        (an op with a fixed non-zero padding returns one without it: see `current_bounds`)."""
        return op

    def current_bounds(self, op, weight: np.ndarray, source_shape, source_range: tuple[int, int]):
        """Per-neuron (I_lo, I_hi, acc_lo, acc_hi) terms this projection adds to a layer,
        each synapse taking the extreme of its source; int64 arrays of the out shape."""
        smin, smax = source_range
        wp, wn = np.maximum(weight, 0), np.minimum(weight, 0)
        hi, lo = full_map(source_shape, smax), full_map(source_shape, smin)
        acc = self.accumulator_op(op)
        # Padded taps hold their pad value (>= 0): W·pad lands in both I terms once, and in
        # the accumulator only on the side of its sign.
        i_hi = self.project(op, wp, hi)[0] + self.project(op, wn, lo)[0]
        i_lo = self.project(op, wn, hi)[0] + self.project(op, wp, lo)[0]
        a_hi = self.project(op, wp, hi)[0] + self.project(acc, wn, lo)[0]
        a_lo = self.project(op, wn, hi)[0] + self.project(acc, wp, lo)[0]
        return i_lo, i_hi, a_lo, a_hi

    # ---- plan and emit
    def plan_geometry(self, op, source_shape, out_shape, where: str) -> Geometry:
        """The geometry the plan and the engines use; PlanError for what they cannot take."""
        raise PlanError(f"{where}op {self.name} has no hardware geometry")

    def hw_geometry(self, geometry: Geometry):
        """The hw.geometry object the engine is built with."""
        raise NotImplementedError

    def hw_weights(self, weight: np.ndarray) -> np.ndarray:
        """The IR weight as the hw engine takes it."""
        return weight

    def accumulate_cycles(self, geometry: Geometry, lanes: int, sops: float, events: float) -> float:
        """Accumulator cycles per image for this projection: `sops` synaptic ops and `events`
        events arriving (per image). The engines walk P lanes per cycle (docs/hardware.md)."""
        return sops / lanes
