"""Exact integer arithmetic for the projections (numpy only; no rounding anywhere).

Integer matrix products go through BLAS when that is provably exact. With K terms per sum,
every product and partial sum is an integer of magnitude <= K·max|x|·max|W|. IEEE float32
represents and adds every integer below 2^24 exactly, float64 every integer below 2^53,
in any summation order; so below those limits the float product is bit-identical to int64
arithmetic (numpy's int64 matmul has no BLAS and is several times slower). Above 2^53 the
int64 path runs. Set USE_EXACT_FLOAT_MATMUL = False to force int64 (the tests compare both).
"""
from __future__ import annotations

import numpy as np

USE_EXACT_FLOAT_MATMUL = True
_EXACT_LIMITS = ((2 ** 24, np.float32), (2 ** 53, np.float64))


def exact_dtype(terms: int, max_abs_x: int, max_abs_w: int):
    """The cheapest dtype whose matrix product of such integers is exact."""
    if USE_EXACT_FLOAT_MATMUL:
        bound = terms * max_abs_x * max_abs_w
        for limit, dtype in _EXACT_LIMITS:
            if bound < limit:
                return dtype
    return np.int64


def max_abs(x: np.ndarray) -> int:
    """max |x| as a Python int (no copy, no overflow of the int8 minimum)."""
    return max(int(x.max()), -int(x.min())) if x.size else 0


def int_matmul(a: np.ndarray, b: np.ndarray, max_abs_a: int | None = None) -> np.ndarray:
    """a @ b for integer matrices, exactly; returns int64."""
    if a.size == 0 or b.size == 0:
        return np.zeros((a.shape[0], b.shape[1]), np.int64)
    max_a = max_abs(a) if max_abs_a is None else int(max_abs_a)
    dtype = exact_dtype(a.shape[1], max_a, max_abs(b))
    return (a.astype(dtype, copy=False) @ b.astype(dtype, copy=False)).astype(np.int64)


def per_channel(values, ndim: int) -> np.ndarray:
    """[C] values shaped to broadcast over [N, C, ...] arrays of `ndim` dimensions."""
    return np.asarray(values, dtype=np.int64).reshape((1, -1) + (1,) * (ndim - 2))
