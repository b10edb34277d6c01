"""One input of a multi-projection engine: where its events come from, its geometry and its
weights (docs/hardware.md, "Graph-shaped hardware").

A layer of a residual network reads several sources (SPEC §4: the currents of all its
projections are summed before the LIF update). Each becomes a `Projection`: the main conv,
a 1×1 stride-2 projection shortcut (a `ConvGeometry`), a dense layer (`DenseGeometry`) or an
identity shortcut (`IdentityGeometry`: neuron i of the source feeds neuron i of the layer
with the per-channel weight w[channel of i], as gen.ir.Identity).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hw.geometry import ConvGeometry, DenseGeometry, _positive

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class IdentityGeometry:
    """Source and layer of the same shape [channels, height, width] (a vector: height = width
    = 1); weights [channels]. One synaptic op per event."""
    channels: int
    height: int = 1
    width: int = 1

    def __post_init__(self):
        for name in ("channels", "height", "width"):
            _positive(name, getattr(self, name))

    is_conv = False

    @property
    def in_size(self) -> int:
        return self.channels * self.height * self.width

    out_size = in_size

    @property
    def out_channels(self) -> int:
        return self.channels

    @property
    def out_height(self) -> int:
        return self.height

    @property
    def out_width(self) -> int:
        return self.width

    @property
    def out_positions(self) -> int:
        return self.height * self.width

    @property
    def fan_in(self) -> int:
        return 1

    @property
    def weight_shape(self) -> tuple:
        return (self.channels,)


GEOMETRIES = (ConvGeometry, DenseGeometry, IdentityGeometry)


def out_shape(geometry) -> tuple[int, int, int]:
    """(channels, height, width) of the layer a projection writes (a vector: (O, 1, 1))."""
    if isinstance(geometry, DenseGeometry):
        return (geometry.out_features, 1, 1)
    return (geometry.out_channels, geometry.out_height, geometry.out_width)


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from the source named `source` into an engine: geometry plus int weights
    ([O,C,k,k] conv, [O,I] dense, [C] identity)."""
    source: str
    geometry: object
    weights: np.ndarray

    def __post_init__(self):
        if not isinstance(self.source, str) or not _NAME.match(self.source):
            raise ValueError(f"source must be a name matching [A-Za-z0-9_]+, not {self.source!r}")
        if not isinstance(self.geometry, GEOMETRIES):
            raise TypeError(f"geometry must be a ConvGeometry, DenseGeometry or IdentityGeometry, "
                            f"not {self.geometry!r}")


def check_projections(projections) -> tuple[Projection, ...]:
    """A non-empty list of Projections with distinct sources that all write the same layer
    shape (the engine's one current memory)."""
    projections = tuple(projections)
    if not projections or not all(isinstance(p, Projection) for p in projections):
        raise ValueError(f"projections must be a non-empty list of hw.projection.Projection, "
                         f"not {projections!r}")
    sources = [p.source for p in projections]
    if len(set(sources)) != len(sources):
        raise ValueError(f"projections must read distinct sources, not {sources!r}")
    shapes = [out_shape(p.geometry) for p in projections]
    if len(set(shapes)) != 1:
        raise ValueError(f"projections must all write the same layer shape, not "
                         f"{dict(zip(sources, shapes))!r}")
    return projections
