"""Accuracy of a model on uint8 images, in batches, without gradients."""
from __future__ import annotations

import math

import numpy as np
import torch

from .arch import infer_shapes


# One batch's activations (T x batch x the widest layer, float32) stay below this: a large
# --batch-size or T then costs time, not all of the machine's memory. Results do not depend on
# the batch size (BatchNorm runs on its running statistics in eval mode).
MAX_BATCH_ACTIVATION_BYTES = 2 ** 30


def memory_safe_batch_size(model, batch_size: int) -> int:
    """batch_size, lowered so that T·batch·(widest layer)·4 bytes stays within MAX_BATCH_ACTIVATION_BYTES."""
    arch = model.arch
    widest = max([math.prod(arch["input_shape"])] + [math.prod(s) for s in infer_shapes(arch).values()])
    per_image = arch["timesteps"] * widest * 4
    return max(1, min(batch_size, MAX_BATCH_ACTIVATION_BYTES // per_image))


def predict(model, images: np.ndarray | torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Predicted classes (int64 [N]) of uint8 images [N, C, H, W]; the model is put in eval mode."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, not {batch_size!r}")
    batch_size = memory_safe_batch_size(model, batch_size)
    images = torch.as_tensor(images)
    model.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            out.append(model(images[lo:lo + batch_size]).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def accuracy(model, images, labels, batch_size: int = 500) -> float:
    """Fraction of images whose predicted class equals the label."""
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise ValueError(f"images and labels must have the same length, not {len(images)} and {len(labels)}")
    if len(labels) == 0:
        raise ValueError("images must not be empty")
    return float((predict(model, images, batch_size) == labels).mean())
