"""Images to input beats and output beats to logits, exactly as manifest.json describes them.

Input: one image is C*H*W uint8 pixels in [C,H,W] row-major order, eight pixels per 64-bit
beat (pixel i of a beat in byte i, little-endian), the last beat zero-padded. Since byte i
of a little-endian beat is simply the i-th byte in memory, an image's bytes are its
flattened pixels followed by zeros.
Output: per image, `words_per_image` little-endian int32 words: the K logits, the class,
then padding to whole beats.
"""
from __future__ import annotations

import numpy as np

from formats.manifest import BuildInfo


def check_images(info: BuildInfo, images) -> np.ndarray:
    """uint8 [N, C, H, W] (a single [C, H, W] image becomes N = 1); anything else is a ValueError."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy array of uint8 {list(info.input_shape)}, "
                        f"not {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"images must have dtype uint8 (raw 0..255 pixels), not {images.dtype}")
    if images.shape == info.input_shape:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != info.input_shape:
        raise ValueError(f"images must have shape [N, {', '.join(map(str, info.input_shape))}], "
                         f"not {list(images.shape)}")
    return images


def pack_images(info: BuildInfo, images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 [N, input_bytes]: each row is what the DMA sends for one image."""
    n = len(images)
    if out is None:
        out = np.zeros((n, info.input_bytes), dtype=np.uint8)
    flat = images.reshape(n, info.pixels_per_image)
    out[:n, :info.pixels_per_image] = flat
    out[:n, info.pixels_per_image:] = 0
    return out


def unpack_results(info: BuildInfo, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Received bytes (or int32 words) of N images -> (int64 logits [N, K], int64 classes [N])."""
    words = np.ascontiguousarray(raw).view("<i4").reshape(-1, info.output_bytes // 4)
    k = info.num_classes
    return words[:, :k].astype(np.int64), words[:, k].astype(np.int64)
