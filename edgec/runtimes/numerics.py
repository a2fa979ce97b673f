"""Compare an artifact's outputs with the reference (ONNX Runtime on the original model), per output.

Besides max-abs and cosine of the outputs, it compares the *difference* of two samples' outputs: deep random
nets map different inputs to nearly the same output direction, so plain cosine hides layout and padding bugs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgec.artifact import NumericsResult, OutputMetrics


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


def precision_key(precision: str) -> str:
    """Which per-precision threshold entry applies: every integer or compressed-weight scheme (int8,
    int8-dynamic, int8-weights, int4-weights, lut6-weights, ...) is gated like int8."""
    if precision.startswith("int") or precision.endswith("-weights"):
        return "int8"
    return precision


def thresholds(spec, precision: str) -> dict[str, float | None]:
    """The gates for an artifact of this precision (a NumericsSpec): the per-precision entry where set,
    else the fp32 ones."""
    p = spec.precision.get(precision_key(precision))
    pick = (lambda name: getattr(p, name) if p is not None and getattr(p, name) is not None
            else getattr(spec, name, None))
    out = {"min_cosine": pick("min_cosine"), "max_abs": pick("max_abs"),
           "min_top1": pick("min_top1"), "min_top5": pick("min_top5")}
    out["min_delta_cosine"] = p.min_delta_cosine if p is not None and p.min_delta_cosine is not None \
        else out["min_cosine"]
    return out


def compare(
    reference: list[dict[str, np.ndarray]],
    actual: list[dict[str, np.ndarray]],
    ran_on: str,
    min_cosine: float,
    max_abs: float | None = None,
    min_delta_cosine: float | None = None,
) -> NumericsResult:
    """Gate the artifact's outputs against the reference. The delta-cosine gate defaults to min_cosine."""
    min_delta = min_cosine if min_delta_cosine is None else min_delta_cosine
    outputs: dict[str, OutputMetrics] = {}
    problems: list[str] = []
    for name in reference[0]:
        if any(name not in a for a in actual):
            outputs[name] = OutputMetrics(max_abs=float("inf"), cosine=0.0, finite=False)
            problems.append(f"output '{name}' is missing from the artifact's outputs")
            continue
        m = output_metrics([r[name] for r in reference], [a[name] for a in actual])
        outputs[name] = m
        if not m.finite:
            problems.append(f"output '{name}' has NaN/inf (or the wrong shape) where the reference is finite")
        if m.cosine < min_cosine:
            problems.append(f"output '{name}' cosine {m.cosine:.6f} < {min_cosine}")
        if m.delta_cosine is not None and m.delta_cosine < min_delta:
            problems.append(f"output '{name}' cosine of two inputs' difference {m.delta_cosine:.6f} < {min_delta}")
        if max_abs is not None and m.max_abs > max_abs:
            problems.append(f"output '{name}' max-abs error {m.max_abs:.3g} > {max_abs}")
    return NumericsResult(
        ran_on=ran_on,
        outputs=outputs,
        passed=not problems,
        thresholds={"min_cosine": min_cosine, "min_delta_cosine": min_delta, "max_abs": max_abs},
        samples=len(reference),
        message="; ".join(problems),
    )


def run_all(run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], feeds: list[dict]) -> list[dict]:
    return [run(f) for f in feeds]
