"""The two numbers every output comparison starts from: cosine and the per-output metrics (max-abs, cosine, the
cosine of the difference of two samples' outputs)."""

from __future__ import annotations

import numpy as np

from edgec.artifact import OutputMetrics


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0 or not np.isfinite(na) or not np.isfinite(nb):
        return 0.0 if not (np.array_equal(a, b)) else 1.0
    return float(np.dot(a, b) / (na * nb))


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def output_metrics(refs: list[np.ndarray], acts: list[np.ndarray]) -> OutputMetrics:
    ref = [_as_float(r) for r in refs]
    act = [_as_float(a).reshape(r.shape) if a.size == r.size else _as_float(a) for a, r in zip(acts, ref)]
    for r, a in zip(ref, act):
        if r.shape != a.shape:
            return OutputMetrics(max_abs=float("inf"), cosine=0.0, finite=False)
    finite = all(np.isfinite(a).all() or not np.isfinite(r).all() for r, a in zip(ref, act))
    with np.errstate(invalid="ignore"):
        max_abs = max(float(np.nanmax(np.abs(r - a))) if r.size else 0.0 for r, a in zip(ref, act))
    if not finite:
        max_abs = float("inf")
    cos = min(cosine(r, a) for r, a in zip(ref, act))
    delta = None
    if len(ref) >= 2:
        delta = cosine(ref[0] - ref[1], act[0] - act[1])
    return OutputMetrics(max_abs=max_abs, cosine=cos, delta_cosine=delta, finite=finite)
