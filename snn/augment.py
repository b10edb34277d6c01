"""Random affine augmentation of image batches (torch), for training on 8,000 images.

Each image gets its own random shift (up to ±`shift` pixels), rotation (±`degrees`) and
scale (1 ± `scale`), applied with bilinear resampling and zero fill (black background).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check_range(name: str, value, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= upper:
        raise ValueError(f"{name} must be a number in [0, {upper}], not {value!r}")
    return float(value)


def random_affine(images: torch.Tensor, generator: torch.Generator, shift: float = 2.0,
                  degrees: float = 10.0, scale: float = 0.1) -> torch.Tensor:
    """Float images [B, C, H, W] in [0, 1] -> randomly shifted/rotated/scaled copies."""
    shift = _check_range("shift", shift, 8.0)
    degrees = _check_range("degrees", degrees, 45.0)
    scale = _check_range("scale", scale, 0.5)
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor [B, C, H, W], not {images.dtype} {list(images.shape)}")
    b, _, h, w = images.shape

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(b, generator=generator)

    angle = uniform(-degrees, degrees) * (math.pi / 180)
    zoom = uniform(1 - scale, 1 + scale)
    # affine_grid maps output coordinates in [-1, 1] to input coordinates: the inverse
    # transform; a shift of d pixels is 2d/size in those units.
    tx = uniform(-shift, shift) * 2 / w
    ty = uniform(-shift, shift) * 2 / h
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
