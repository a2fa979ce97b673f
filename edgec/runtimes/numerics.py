"""Compare an artifact's outputs with the reference (ONNX Runtime on the original model), per output.

Besides max-abs and cosine of the outputs, it compares the *difference* of two samples' outputs: deep random
nets map different inputs to nearly the same output direction, so plain cosine hides layout and padding bugs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgec.artifact import NumericsResult, OutputMetrics
from edgec.runtimes.metrics import cosine, output_metrics  # noqa: F401  (re-exported: callers compare with them)
from edgec.runtimes.outputs import output_accuracy


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


RANGE_DIVISOR = 10
NOISE_FACTOR = 10  # an artifact may differ by this many times the reference's own float noise (as graph/simplify)


def reference_noise(reference: list[dict], unoptimized: list[dict], kinds: dict | None = None) -> dict:
    """Per output, (cosine, max-abs, delta cosine) of ONNX Runtime with graph optimizations off vs on, same inputs: how far
    the reference is reproducible in fp32 at all."""
    out = {}
    for name in reference[0]:
        m, _ = output_accuracy(name, [r[name] for r in reference], [u[name] for u in unoptimized], kinds or {})
        delta = m.delta_cosine if m.delta_cosine is not None else 1.0
        out[name] = (m.cosine, m.max_abs, delta) if m.finite else (1.0, 0.0, 1.0)
    return out


def check_reference_finite(reference: list[dict], where: str = "") -> None:
    """NaN/Inf in the reference is not the artifact's error: say so, with the inputs to look at."""
    from edgec.errors import ReferenceNotFinite

    bad = sorted({name for r in reference for name, v in r.items()
                  if np.issubdtype(np.asarray(v).dtype, np.floating) and not np.isfinite(v).all()})
    if bad:
        raise ReferenceNotFinite(
            f"ONNX Runtime's output {', '.join(repr(b) for b in bad)} of the original model is NaN/Inf on the "
            f"validation inputs{' (' + where + ')' if where else ''}, so no artifact can be compared with it. The "
            "inputs are probably outside the model's domain (e.g. a 0/1 mask given other values, token ids past the "
            "vocabulary): give real inputs with --validation-data DIR, or per-input values in the profile "
            "(inputs: {NAME: {values: [...]}} or {range: [lo, hi]}).")


def gate_output(name: str, m: OutputMetrics, gates: dict, measured: bool = False,
                noise: tuple[float, float, float] | None = None) -> list[str]:
    """The problems of one output against the gates; the same rules for every build, precision and command."""
    out = []
    min_cos, min_delta, max_abs = gates.get("min_cosine"), gates.get("min_delta_cosine"), gates.get("max_abs")
    noise_cos, noise_abs, noise_delta = noise if noise is not None else (1.0, 0.0, 1.0)
    if min_cos is not None:
        min_cos = 1 - max(1 - min_cos, NOISE_FACTOR * (1 - noise_cos))
    if min_delta is not None:
        min_delta = 1 - max(1 - min_delta, NOISE_FACTOR * (1 - noise_delta))
    if max_abs is not None:
        max_abs = max_abs + NOISE_FACTOR * noise_abs
    if not m.finite:
        out.append(f"output '{name}' has NaN/inf (or the wrong shape) where the reference is finite")
    # a classifier measured on real data is gated on its decisions (top-k below): int8 logits of a confident net
    # move ~10% and clip at the calibrated range without changing a decision (PP-OCR's classifier: logit cosine
    # 0.94 on 12 held-out lines, top-1 0.99), so their cosine is reported, not gated
    decisions = measured and m.top1 is not None and gates.get("min_top1") is not None
    # a dense map passes on its error relative to its range even where values near 0 make the cosine noise: the
    # cosine gate allows an error norm of sqrt(2 (1 - c)) of the output's norm; a dense map's RMS error may be a
    # tenth of that, of its range (0.999: 0.45% of the range)
    in_range = (m.range_error is not None and min_cos is not None
                and m.range_error <= np.sqrt(2 * (1 - min_cos)) / RANGE_DIVISOR)
    if min_cos is not None and m.cosine < min_cos and not decisions and not in_range:
        extra = f" (RMS error {m.range_error:.3g} of the output's range)" if m.range_error is not None else ""
        out.append(f"output '{name}' cosine {m.cosine:.6f} < {min_cos:.10g}{extra}")
    if m.delta_cosine is not None and min_delta is not None and m.delta_cosine < min_delta and not in_range:
        out.append(f"output '{name}' cosine of two inputs' difference {m.delta_cosine:.6f} < {min_delta:.10g}")
    if max_abs is not None and m.max_abs > max_abs:
        out.append(f"output '{name}' max-abs error {m.max_abs:.3g} > {max_abs:.6g}")
    # top-k on random inputs says nothing about real accuracy, so it only gates measured builds
    for k in ("top1", "top5"):
        v, g = getattr(m, k), gates.get(f"min_{k}")
        if measured and v is not None and g is not None and v < g:
            out.append(f"output '{name}' {k[:3]}-{k[3]} agreement {v:.3f} < {g}")
    return out


def compare(
    reference: list[dict[str, np.ndarray]],
    actual: list[dict[str, np.ndarray]],
    ran_on: str,
    min_cosine: float,
    max_abs: float | None = None,
    min_delta_cosine: float | None = None,
    kinds: dict | None = None,
    noise: dict | None = None,
) -> NumericsResult:
    """Gate the artifact's outputs against the reference. The delta-cosine gate defaults to min_cosine.
    kinds (edgec.runtimes.outputs.output_kinds): compare each output by its kind; None: as plain tensors.
    noise (reference_noise): widen the gates by the reference's own float noise."""
    min_delta = min_cosine if min_delta_cosine is None else min_delta_cosine
    gates = {"min_cosine": min_cosine, "min_delta_cosine": min_delta, "max_abs": max_abs}
    outputs: dict[str, OutputMetrics] = {}
    problems: list[str] = []
    for name in reference[0]:
        if any(name not in a for a in actual):
            outputs[name] = OutputMetrics(max_abs=float("inf"), cosine=0.0, finite=False)
            problems.append(f"output '{name}' is missing from the artifact's outputs")
            continue
        refs, acts = [r[name] for r in reference], [a[name] for a in actual]
        if kinds is not None:
                    m, _ = output_accuracy(name, refs, acts, kinds)
        else:
            m = output_metrics(refs, acts)
        if noise is not None and name in noise:
            m.noise_cosine = noise[name][0]
        outputs[name] = m
        problems += gate_output(name, m, gates, noise=noise.get(name) if noise else None)
    return NumericsResult(
        ran_on=ran_on,
        outputs=outputs,
        passed=not problems,
        thresholds=gates,
        samples=len(reference),
        message="; ".join(problems),
    )


def run_all(run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]], feeds: list[dict]) -> list[dict]:
    return [run(f) for f in feeds]
