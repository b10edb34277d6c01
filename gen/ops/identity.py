"""identity: a shortcut; neuron i of the source feeds neuron i of the layer with weight
w[channel of i]. The multi-projection spiking engine takes it (hw.projection.IdentityGeometry:
one synaptic op per event, in one cycle, the other lanes masked)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.projection import IdentityGeometry

from gen.errors import ModelError
from gen.ops.arith import per_channel
from gen.ops.base import Geometry, OpSpec


@dataclass(frozen=True)
class Identity:
    """A shortcut: neuron i of the source feeds neuron i of the layer with weight w[channel of i]."""

    def out_shape(self, out_channels: int, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(in_shape)

    def weight_shape(self, out_channels: int, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (in_shape[0],)

    def to_json(self) -> dict:
        return {"type": "identity"}


class IdentitySpec(OpSpec):
    name = "identity"
    op_class = Identity
    hardware = True
    # The event decoder divides the flat address by the plane size and the channel by the
    # lanes (multiplications by reciprocals).
    decoder_dsps = 2

    def fan_in(self, op: Identity, weight) -> int:
        return 1

    def project(self, op: Identity, weight, x):
        return x.astype(np.int64) * per_channel(weight, x.ndim)

    def fanout(self, op: Identity, weight, source_shape, out_shape):
        return np.ones(source_shape, dtype=np.int64)

    def torch_project(self, op: Identity, weight, x):
        return x * weight.reshape((1, -1) + (1,) * (x.ndim - 2))


    def nir_nodes(self, op: Identity, weight, bias, source_shape, out_shape, node: str, where: str) -> list:
        import nir

        if np.any(bias != 0):
            raise ModelError(f"{where}an identity projection cannot carry the bias")
        scale = np.broadcast_to(weight.reshape((-1,) + (1,) * (len(out_shape) - 1)), out_shape).copy()
        return [(node, nir.Scale(scale=scale))]

    def plan_geometry(self, op: Identity, source_shape, out_shape, where: str) -> Geometry:
        return Geometry(self.name, tuple(source_shape), tuple(out_shape), fan_in=1,
                        out_positions=int(np.prod(out_shape[1:])))

    def hw_geometry(self, geometry: Geometry) -> IdentityGeometry:
        channels, *spatial = geometry.in_shape
        height, width = spatial if spatial else (1, 1)
        return IdentityGeometry(channels=channels, height=height, width=width)

    def accumulate_cycles(self, geometry: Geometry, lanes: int, sops: float, events: float) -> float:
        return events        # one op per event: its own lane, the others masked


SPEC = IdentitySpec()
