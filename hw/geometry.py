"""Projection geometry (conv or dense) and its event fan-out, shared by hardware and tests.

The fan-out tables here are computed in Python once per layer, so the hardware walks
only the valid kernel taps of an event without any division at run time.
"""
from __future__ import annotations

from dataclasses import dataclass


def _positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class ConvGeometry:
    in_channels: int
    in_height: int
    in_width: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0

    def __post_init__(self):
        for name in ("in_channels", "in_height", "in_width", "out_channels", "kernel", "stride"):
            _positive(name, getattr(self, name))
        if not isinstance(self.padding, int) or isinstance(self.padding, bool) or not 0 <= self.padding < self.kernel:
            raise ValueError(f"padding must be an integer in [0, kernel), not {self.padding!r}")
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"kernel must fit the padded input ({self.in_height}x{self.in_width}, "
                             f"padding {self.padding}), not {self.kernel!r}")

    is_conv = True

    @property
    def out_height(self) -> int:
        return (self.in_height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.in_width + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def in_size(self) -> int:
        return self.in_channels * self.in_height * self.in_width

    @property
    def out_positions(self) -> int:
        return self.out_height * self.out_width

    @property
    def out_size(self) -> int:
        return self.out_channels * self.out_positions

    @property
    def fan_in(self) -> int:
        """Weights per output channel: C·k·k."""
        return self.in_channels * self.kernel * self.kernel

    @property
    def weight_shape(self) -> tuple:
        return (self.out_channels, self.in_channels, self.kernel, self.kernel)

    def axis_taps(self, coord: int, out_len: int) -> list[tuple[int, int]]:
        """(output coordinate, kernel index) pairs an input coordinate reaches, oy ascending."""
        taps = []
        for out in range(out_len):
            k = coord + self.padding - out * self.stride
            if 0 <= k < self.kernel:
                taps.append((out, k))
        return taps

    def row_taps(self, y: int):
        return self.axis_taps(y, self.out_height)

    def col_taps(self, x: int):
        return self.axis_taps(x, self.out_width)


@dataclass(frozen=True)
class DenseGeometry:
    in_features: int
    out_features: int

    def __post_init__(self):
        _positive("in_features", self.in_features)
        _positive("out_features", self.out_features)

    is_conv = False

    @property
    def in_size(self) -> int:
        return self.in_features

    @property
    def out_channels(self) -> int:
        return self.out_features

    @property
    def out_positions(self) -> int:
        return 1

    @property
    def out_size(self) -> int:
        return self.out_features

    @property
    def fan_in(self) -> int:
        return self.in_features

    @property
    def weight_shape(self) -> tuple:
        return (self.out_features, self.in_features)


def check_geometry(geometry):
    if not isinstance(geometry, (ConvGeometry, DenseGeometry)):
        raise TypeError(f"geometry must be a ConvGeometry or DenseGeometry, not {geometry!r}")
    return geometry


def check_lanes(lanes, out_channels: int) -> int:
    valid = [p for p in range(1, out_channels + 1) if out_channels % p == 0]
    if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes not in valid:
        raise ValueError(f"lanes must be one of {valid} (divisors of {out_channels} output channels), "
                         f"not {lanes!r}")
    return lanes
