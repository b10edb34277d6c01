"""dense: fully connected; the source is flattened in row-major (C, H, W) order."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.geometry import DenseGeometry

from gen.ops.arith import int_matmul
from gen.ops.base import Geometry, OpSpec


@dataclass(frozen=True)
class Dense:
    """Fully connected: the source is flattened in row-major (C, H, W) order."""

    def out_shape(self, out_channels: int, in_shape: tuple[int, ...]) -> tuple[int]:
        return (out_channels,)

    def weight_shape(self, out_channels: int, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (out_channels, int(np.prod(in_shape)))

    def to_json(self) -> dict:
        return {"type": "dense"}


class DenseSpec(OpSpec):
    name = "dense"
    op_class = Dense
    hardware = True
    decoder_dsps = 0            # a dense event's address is its weight column: no arithmetic

    def project(self, op: Dense, weight, x):
        return int_matmul(x.reshape(x.shape[0], -1), weight.T)

    def fanout(self, op: Dense, weight, source_shape, out_shape):
        return np.full(source_shape, out_shape[0], dtype=np.int64)

    def torch_project(self, op: Dense, weight, x):
        return x.reshape(x.shape[0], -1) @ weight.T

    def nir_nodes(self, op: Dense, weight, bias, source_shape, out_shape, node: str, where: str) -> list:
        import nir

        chain = []
        if len(source_shape) != 1:
            chain.append((f"{node}_flatten", nir.Flatten(input_type={"input": np.array(source_shape)},
                                                         start_dim=0, end_dim=-1)))
        return chain + [(node, nir.Affine(weight=weight, bias=bias))]

    def plan_geometry(self, op: Dense, source_shape, out_shape, where: str) -> Geometry:
        return Geometry(self.name, tuple(source_shape), tuple(out_shape),
                        fan_in=int(np.prod(source_shape)), out_positions=1)

    def hw_geometry(self, geometry: Geometry) -> DenseGeometry:
        return DenseGeometry(in_features=geometry.fan_in, out_features=geometry.out_channels)

    def hw_weights(self, weight: np.ndarray) -> np.ndarray:
        return weight.reshape(weight.shape[0], -1)


SPEC = DenseSpec()
