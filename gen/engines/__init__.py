"""The registry of layer engines: one module per engine in this package.

    engine_spec(kind, family=DEFAULT_FAMILY, where="") -> EngineSpec (PlanError naming the layer
                                                    and listing the registered engines)
    engine_named(name, where="")   -> EngineSpec by its plan.json name (its hw class name)
    supported_engines()            -> ("encoding/event", "readout/event", "spiking/event")
    engine_families(kind)          -> the families registered for a layer kind

Every module of this package that defines SPEC (an EngineSpec) is an entry, keyed by
(layer kind, family): adding an engine is adding a module (docs/architecture.md). The
registry is read by gen.plan (cost model) and gen.backend.emit (factory, stream names).
"""
from __future__ import annotations

import importlib
import pkgutil

from gen.errors import PlanError
from gen.ir import LAYER_KINDS
from gen.engines.base import EngineContext, EngineSpec

DEFAULT_FAMILY = "event"
_HELPERS = {"base", "memory"}


def _discover() -> dict[tuple[str, str], EngineSpec]:
    specs = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _HELPERS:
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SPEC", None)
        if not isinstance(spec, EngineSpec):
            continue
        if spec.kind not in LAYER_KINDS:
            raise ImportError(f"engine {info.name}: kind must be one of {LAYER_KINDS}, not {spec.kind!r}")
        key = (spec.kind, spec.family)
        if key in specs:
            raise ImportError(f"engines {specs[key].name} and {spec.name} both register {key}")
        specs[key] = spec
    return specs


_ENGINES = _discover()


def supported_engines() -> tuple[str, ...]:
    return tuple(sorted(f"{kind}/{family}" for kind, family in _ENGINES))


def engine_families(kind: str) -> tuple[str, ...]:
    return tuple(sorted(family for k, family in _ENGINES if k == kind))


def engine_spec(kind: str, family: str = DEFAULT_FAMILY, where: str = "") -> EngineSpec:
    """The engine for a layer of `kind`; PlanError listing what is registered otherwise."""
    spec = _ENGINES.get((kind, family))
    if spec is None:
        raise PlanError(f"{where}no engine for a {kind} layer of family {family!r}; supported: "
                        f"{', '.join(supported_engines())}")
    return spec


def engine_named(name: str, where: str = "") -> EngineSpec:
    for spec in _ENGINES.values():
        if spec.name == name:
            return spec
    raise PlanError(f"{where}no engine named {name!r}; supported: "
                    f"{', '.join(sorted(s.name for s in _ENGINES.values()))}")


__all__ = ["DEFAULT_FAMILY", "EngineContext", "EngineSpec", "engine_families", "engine_named", "engine_spec",
           "supported_engines"]
