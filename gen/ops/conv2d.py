"""conv2d: 2-D convolution with a square kernel (PyTorch semantics: cross-correlation)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hw.geometry import ConvGeometry

from gen.errors import ModelError, PlanError
from gen.ops.arith import exact_dtype, max_abs
from gen.ops.base import Geometry, OpSpec, check_int


@dataclass(frozen=True)
class Conv2d:
    """2-D convolution, square kernel, PyTorch semantics (cross-correlation).

    `pad_value`: the per-input-channel value the padding holds; () means zeros. Only the
    encoding layer may pad with non-zero pixels (a folded mean/std normalisation, SPEC §2.3).
    """
    kernel: int
    stride: int = 1
    padding: int = 0
    pad_value: tuple[int, ...] = ()

    def __post_init__(self):
        check_int("kernel", self.kernel, 1)
        check_int("stride", self.stride, 1)
        check_int("padding", self.padding, 0)
        if not isinstance(self.pad_value, tuple):
            raise TypeError(f"pad_value must be a tuple of ints, not {self.pad_value!r}")
        for i, v in enumerate(self.pad_value):
            check_int(f"pad_value[{i}]", v, 0, 255)

    def out_shape(self, out_channels: int, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
        if len(in_shape) != 3:
            raise ValueError(f"conv2d input must be (C, H, W), not {in_shape!r}")
        _, h, w = in_shape
        oh = (h + 2 * self.padding - self.kernel) // self.stride + 1
        ow = (w + 2 * self.padding - self.kernel) // self.stride + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"conv2d kernel {self.kernel} (padding {self.padding}) must fit the input {in_shape!r}")
        return (out_channels, oh, ow)

    def weight_shape(self, out_channels: int, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (out_channels, in_shape[0], self.kernel, self.kernel)

    def to_json(self) -> dict:
        return {"type": "conv2d", "kernel": self.kernel, "stride": self.stride,
                "padding": self.padding, "pad_value": list(self.pad_value)}


def pad_spatial(x: np.ndarray, padding: int, pad_value: tuple[int, ...]) -> np.ndarray:
    """Pad [N, C, H, W] spatially with a per-channel constant (zeros when pad_value is ())."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
    if pad_value:
        out[:] = np.asarray(pad_value, dtype=x.dtype).reshape(1, c, 1, 1)
    out[:, :, padding:padding + h, padding:padding + w] = x
    return out


def axis_fanout(size: int, out_size: int, kernel: int, stride: int, padding: int) -> np.ndarray:
    """For each input index along one axis: how many (output index, kernel tap) pairs read it."""
    counts = np.zeros(size, dtype=np.int64)
    for y in range(out_size):
        for u in range(kernel):
            i = y * stride + u - padding
            if 0 <= i < size:
                counts[i] += 1
    return counts


class Conv2dSpec(OpSpec):
    name = "conv2d"
    op_class = Conv2d
    hardware = True
    # The event decoder divides the flat address by the plane size and the row width
    # (multiplications by reciprocals) and multiplies the channel back.
    decoder_dsps = 3

    def from_json(self, fields: dict) -> Conv2d:
        if "pad_value" in fields:
            fields = dict(fields, pad_value=tuple(fields["pad_value"]))
        return Conv2d(**fields)

    def check(self, op: Conv2d, *, source_is_input: bool, source_shape) -> None:
        if not op.pad_value:
            return
        if not source_is_input:
            raise ValueError(f"pad_value must be () except on the pixels, not {op.pad_value!r}")
        if len(op.pad_value) != source_shape[0]:
            raise ValueError(f"pad_value must have one value per input channel ({source_shape[0]}), "
                             f"not {op.pad_value!r}")

    def project(self, op: Conv2d, weight, x):
        n = x.shape[0]
        max_x = max(max_abs(x), max(op.pad_value, default=0))
        k, s = op.kernel, op.stride
        out_channels = weight.shape[0]
        w = weight.reshape(out_channels, -1)
        dtype = exact_dtype(w.shape[1], max_x, max_abs(w))
        xp = pad_spatial(x.astype(dtype, copy=False), op.padding, op.pad_value)
        windows = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # [N, C, Ho, Wo, k, k]
        ho, wo = windows.shape[2], windows.shape[3]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)
        out = (cols @ w.T.astype(dtype)).astype(np.int64)  # [N·Ho·Wo, O]
        return out.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2)

    def fanout(self, op: Conv2d, weight, source_shape, out_shape):
        _, h, w = source_shape
        fy = axis_fanout(h, out_shape[1], op.kernel, op.stride, op.padding)
        fx = axis_fanout(w, out_shape[2], op.kernel, op.stride, op.padding)
        return np.broadcast_to(out_shape[0] * np.outer(fy, fx)[None], source_shape).copy()

    def torch_project(self, op: Conv2d, weight, x):
        import torch
        import torch.nn.functional as F

        if op.padding:
            n, c, h, w = x.shape
            padded = torch.zeros((n, c, h + 2 * op.padding, w + 2 * op.padding), dtype=x.dtype)
            if op.pad_value:
                padded[:] = torch.tensor(op.pad_value, dtype=x.dtype).reshape(1, c, 1, 1)
            padded[:, :, op.padding:op.padding + h, op.padding:op.padding + w] = x
            x = padded
        return F.conv2d(x, weight, stride=op.stride)

    def nir_nodes(self, op: Conv2d, weight, bias, source_shape, out_shape, node: str, where: str) -> list:
        import nir

        if op.pad_value:
            raise ModelError(f"{where}pads the input with pixel values {list(op.pad_value)} "
                             f"(a folded normalisation); NIR convolutions pad with zeros only")
        h, w = source_shape[1:]
        return [(node, nir.Conv2d(input_shape=(h, w), weight=weight, stride=op.stride, padding=op.padding,
                                  dilation=1, groups=1, bias=bias))]

    def accumulator_op(self, op: Conv2d) -> Conv2d:
        # The accumulator adds the padded taps' fixed W·pad like any other synapse, so only
        # the side of its sign widens the partial sums: the opposite side sees zero padding.
        return dataclasses.replace(op, pad_value=())

    def plan_geometry(self, op: Conv2d, source_shape, out_shape, where: str) -> Geometry:
        if any(op.pad_value):
            raise PlanError(f"{where}padding with non-zero pixels is not supported by the hardware "
                            f"(pad_value {list(op.pad_value)}); train without input normalisation")
        return Geometry(self.name, tuple(source_shape), tuple(out_shape),
                        fan_in=source_shape[0] * op.kernel * op.kernel,
                        out_positions=int(np.prod(out_shape[1:])),
                        kernel=op.kernel, stride=op.stride, padding=op.padding)

    def hw_geometry(self, geometry: Geometry) -> ConvGeometry:
        c, h, w = geometry.in_shape
        return ConvGeometry(in_channels=c, in_height=h, in_width=w, out_channels=geometry.out_channels,
                            kernel=geometry.kernel, stride=geometry.stride, padding=geometry.padding)


SPEC = Conv2dSpec()
