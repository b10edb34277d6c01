"""The registry of IR projection ops: one module per op in this package.

    op_spec(op, where="")        -> OpSpec of an op instance (ModelError if unregistered)
    op_spec_named(name, where="")-> OpSpec by its IR name ("conv2d", ...)
    supported_ops(hardware=False)-> the registered names (only those the engines take)
    op_from_json(data)           -> the op of an IR JSON dict {"type": name, ...fields}
    hardware_geometry(op, source_shape, out_shape, where) -> gen.ops.base.Geometry (PlanError
                                    naming the ops the engines take, for any other op)

Every module of this package that defines SPEC (an OpSpec) is an entry: adding an op is
adding a module (docs/architecture.md). The registry is read by gen.ir (validation, JSON),
gen.ir.golden (projection, fan-out), gen.ir.bounds, gen.plan and gen.backend.emit; nothing else tests an
op's type.
"""
from __future__ import annotations

import importlib
import pkgutil

from gen.errors import ModelError, PlanError
from gen.ops.base import Geometry, OpSpec
from gen.ops.conv2d import Conv2d
from gen.ops.dense import Dense
from gen.ops.identity import Identity

_HELPERS = {"arith", "base"}


def _discover() -> dict[type, OpSpec]:
    specs = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _HELPERS:
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SPEC", None)
        if isinstance(spec, OpSpec):
            specs[spec.op_class] = spec
    return specs


_BY_CLASS = _discover()
_BY_NAME = {spec.name: spec for spec in _BY_CLASS.values()}
OPS = {name: spec.op_class for name, spec in _BY_NAME.items()}   # IR name -> dataclass


def supported_ops(hardware: bool = False) -> tuple[str, ...]:
    """The registered op names, sorted; with hardware=True only those the engines take."""
    return tuple(sorted(name for name, spec in _BY_NAME.items() if spec.hardware or not hardware))


def op_spec(op, where: str = "") -> OpSpec:
    """The registry entry of an IR op instance."""
    spec = _BY_CLASS.get(type(op))
    if spec is None:
        raise ModelError(f"{where}op must be one of the supported ops ({', '.join(supported_ops())}), "
                         f"not {op!r}")
    return spec


def op_spec_named(name: str, where: str = "") -> OpSpec:
    spec = _BY_NAME.get(name)
    if spec is None:
        raise ModelError(f"{where}op must be one of the supported ops ({', '.join(supported_ops())}), "
                         f"not {name!r}")
    return spec


def op_from_json(data: dict):
    """The op of an IR JSON dict; ValueError naming the supported types otherwise."""
    if not isinstance(data, dict) or data.get("type") not in _BY_NAME:
        raise ValueError(f"op type must be one of {list(supported_ops())}, not {data!r}")
    return _BY_NAME[data["type"]].from_json({k: v for k, v in data.items() if k != "type"})


def hardware_geometry(op, source_shape, out_shape, where: str = "") -> Geometry:
    """The op's geometry for the plan and the engines; PlanError for an op no engine takes."""
    spec = op_spec(op, where)
    if not spec.hardware:
        raise PlanError(f"{where}op {spec.name} is not supported by the hardware; supported: "
                        f"{', '.join(supported_ops(hardware=True))}")
    return spec.plan_geometry(op, source_shape, out_shape, where)


__all__ = ["OPS", "Conv2d", "Dense", "Geometry", "Identity", "OpSpec", "hardware_geometry", "op_from_json",
           "op_spec", "op_spec_named", "supported_ops"]
