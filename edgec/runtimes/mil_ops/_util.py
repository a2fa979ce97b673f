"""Small helpers shared by op families."""

from __future__ import annotations

import numpy as np


def compute_dtype(*arrays) -> np.dtype:
    """fp16 tensors are computed in fp32 inside heavy ops (conv, matmul) and rounded once at the end:
    numpy has no fast fp16 BLAS, and devices accumulate fp16 products at higher precision too."""
    return np.float32 if all(np.asarray(a).dtype in (np.float16, np.float32) for a in arrays if a is not None) else np.float64


def f32(a):
    return None if a is None else np.asarray(a, dtype=np.float32)


def ints(a) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def axis_list(axes, rank: int) -> tuple[int, ...]:
    return tuple(sorted(int(a) % rank for a in np.asarray(axes).reshape(-1)))


def scalar(a):
    """A python scalar from a 0-d (or 1-element) const."""
    return np.asarray(a).reshape(-1)[0].item()
