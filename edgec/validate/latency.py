"""Timing protocol (warm-up, N runs or a time budget, median / p90 / min and spread) and the latency modes.

`measure_latency` is the one entry point the build calls. Modes, always labelled in the result:
- host:     the artifact's own runtime on this machine (the Backend's runner)
- emulate:  the host measurement scaled to the device by the roofline: x (device estimate / host estimate)
- estimate: the roofline alone (edgec.validate.estimate); the per-op table is written next to the artifact
- device:   attached hardware (ssh:// Linux board, adb: Android phone, coreml on a Mac)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edgec.artifact import LatencyResult

NOISY_SPREAD = 0.5  # (p90 - min) / median above this: the machine was busy, say so
TOP_OPS = 10  # slowest ops kept in the manifest and shown in the report / budget message


def time_runs(run: Callable[[], object], runs: int, warmup: int, max_seconds: float | None = None,
              min_runs: int = 3) -> list[float]:
    """Times of `runs` calls in ms after `warmup` untimed ones; stops early once `max_seconds` of timed runs
    have passed (but never before `min_runs`)."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000.0)
        if max_seconds is not None and len(times) >= min_runs and time.perf_counter() - start > max_seconds:
            break
    return times


def summarize(
    times_ms: list[float], mode: str, threads: int, budget_ms: float | None, budget_on: str, runtime: str
) -> LatencyResult:
    arr = np.asarray(times_ms, dtype=np.float64)
    median = float(np.median(arr))
    p90 = float(np.percentile(arr, 90))
    low = float(arr.min())
    return _result(mode, median, p90, low, len(times_ms), threads, budget_ms, budget_on, runtime)


def _result(mode, median, p90, low, runs, threads, budget_ms, budget_on, runtime, details=None) -> LatencyResult:
    spread = (p90 - low) / median if median > 0 else 0.0
    measured = median if budget_on == "median" else p90
    passed = None if budget_ms is None else bool(measured <= budget_ms)
    message = ""
    if passed is False:
        message = f"{budget_on} latency {measured:.2f} ms exceeds the budget of {budget_ms:g} ms"
    return LatencyResult(
        mode=mode, median_ms=round(median, 4), p90_ms=round(p90, 4), min_ms=round(low, 4), runs=runs,
        threads=threads, budget_ms=budget_ms, passed=passed, spread=round(spread, 4),
        noisy=runs > 1 and spread > NOISY_SPREAD, runtime=runtime, message=message, details=details or {},
    )


def measure_host(runner, feeds: dict, runs: int, warmup: int, threads: int, budget_ms, budget_on: str,
                 max_seconds: float | None = None) -> LatencyResult:
    times = time_runs(lambda: runner.run(feeds), runs, warmup, max_seconds)
    return summarize(times, "host", threads, budget_ms, budget_on, runner.name)


# ---------------------------------------------------------------- the build's entry point


def measure_latency(runner, artifact, model, profile, feeds: dict, threads: int,
                    table_dir: Path | None | str = "next-to-artifact") -> LatencyResult | None:
    """Latency of `artifact` for `profile` in the profile's mode (validate.latency.mode).

    runner: the Backend's runner for this artifact on this machine; model: the prepared ONNX graph the
    artifact was lowered from (static shapes; the estimator reads it); threads: host threads to measure with.
    A missed budget sets passed=False with a message naming the number, the budget and the slowest ops.
    table_dir: where the per-op estimate table goes (default: next to the artifact); None: nowhere (`edgec
    validate` without --out leaves the build folder as it was).
    """
    spec = profile.validate_.latency
    mode = spec.mode
    if mode == "off":
        return None
    notes: list[str] = []
    if mode in ("host", "emulate") and not getattr(runner, "latency_meaningful", True):
        notes.append(f"{runner.name} is not a latency source (a reference interpreter, not the target's runtime): "
                     f"mode '{mode}' replaced by 'estimate'")
        mode = "estimate"
    if mode == "host":
        result = measure_host(runner, feeds, spec.runs, spec.warmup, threads, spec.budget_ms, spec.budget_on,
                              spec.time_budget_s)
        est = None
    elif mode == "estimate":
        est = _estimate_built(model, profile, artifact)
        result = _result("estimate", est.total_ms, est.total_ms, est.total_ms, 0, est.threads, spec.budget_ms,
                         spec.budget_on, f"roofline on {profile.name} ({est.unit})")
        result.spread = None
        result.details["method"] = ("roofline: per op max(work / (peak x efficiency), bytes / bandwidth) + per-op "
                                    f"overhead, from the '{profile.name}' hardware numbers; not a measurement")
    elif mode == "emulate":
        result, est = _emulate(runner, model, profile, artifact.precision, feeds, threads)
    elif mode == "device":
        result = _device(artifact, profile, feeds)
        est = None
    else:  # the config model admits no other value
        raise ValueError(mode)
    if est is None and result.passed is False:
        est = _estimate_built(model, profile, artifact)  # the slowest ops explain the miss
    if est is not None:
        result.details["estimate"] = est.summary(TOP_OPS)
        where = Path(artifact.path).parent if table_dir == "next-to-artifact" else table_dir
        if where is not None:
            table = Path(where) / f"{Path(artifact.path).name}.latency-ops.csv"
            est.write_table(table)
            if table not in artifact.extra_files:
                artifact.extra_files.append(table)
            result.details["table"] = table.name
    if notes:
        result.details["notes"] = notes
    if result.passed is False and est is not None:
        slow = ", ".join(f"{o.name} ({o.op_type}) {o.ms:.2f} ms" for o in est.top(3))
        result.message += f"; slowest ops (estimate on {profile.name}): {slow}"
    if notes:
        result.message = "; ".join(notes + ([result.message] if result.message else []))
    return result


def _estimate(model, profile, precision: str, threads: int | None = None):
    from edgec.validate.estimate import estimate

    return estimate(model, profile, precision=precision, threads=threads)


def _estimate_built(model, profile, artifact):
    """The estimate of the graph and compute precision the artifact runs (a CoreML program fixes both)."""
    from edgec.validate.estimate import as_built, estimate

    model, program = as_built(model, artifact)
    return estimate(model, profile, precision=artifact.precision, program_precision=program)



def host_profile(spec=None):
    """The profile describing this machine: validate.latency.host_profile, $EDGEC_HOST_PROFILE, the file
    `edgec profiles detect` wrote, else the built-in 'host'."""
    from edgec.config.loader import load_profile
    from edgec.validate.hostcal import user_host_profile

    for cand in (getattr(spec, "host_profile", None), os.environ.get("EDGEC_HOST_PROFILE")):
        if cand:
            return load_profile(cand)
    user = user_host_profile()
    return load_profile(str(user) if user.exists() else "host")


def _emulate(runner, model, profile, precision: str, feeds: dict, threads: int):
    spec = profile.validate_.latency
    host = host_profile(spec)
    measured = measure_host(runner, feeds, spec.runs, spec.warmup, threads, None, spec.budget_on, spec.time_budget_s)
    est_host = _estimate(model, host, precision, threads=threads)
    est_dev = _estimate(model, profile, precision)
    scale = est_dev.total_ms / est_host.total_ms if est_host.total_ms > 0 else 1.0
    result = _result("emulate", measured.median_ms * scale, measured.p90_ms * scale, measured.min_ms * scale,
                     measured.runs, est_dev.threads, spec.budget_ms, spec.budget_on, runner.name)
    result.spread, result.noisy = measured.spread, measured.noisy
    result.details.update({
        "host_median_ms": measured.median_ms, "host_p90_ms": measured.p90_ms, "host_min_ms": measured.min_ms,
        "host_threads": threads, "host_profile": host.name, "scale": round(scale, 4),
        "host_estimate_ms": round(est_host.total_ms, 4), "device_estimate_ms": round(est_dev.total_ms, 4),
        "device_compute_share": round(est_dev.compute_share, 4),
        "method": (f"{runner.name} on this machine ({threads} threads): median {measured.median_ms:.2f} ms, x "
                   f"{scale:.3f} = roofline on {profile.name} ({est_dev.total_ms:.2f} ms, "
                   f"{est_dev.compute_share:.0%} compute-bound) / roofline on {host.name} ({est_host.total_ms:.2f} ms)"),
    })
    return result, est_dev


def _device(artifact, profile, feeds: dict) -> LatencyResult:
    from edgec.validate.runners.device import device_for

    spec = profile.validate_.latency
    dev = device_for(spec.device, artifact.format)
    stats = dev.benchmark(artifact, profile, feeds)
    if stats.times_ms:
        result = summarize(stats.times_ms, "device", stats.threads, spec.budget_ms, spec.budget_on, stats.runtime)
    else:  # tools that only print aggregates (benchmark_model): median from avg, p90 from avg + 1.28 std
        result = _result("device", stats.median_ms, stats.p90_ms, stats.min_ms, stats.runs, stats.threads,
                         spec.budget_ms, spec.budget_on, stats.runtime)
    result.details.update({"device": dev.describe(), "method": stats.method})
    if stats.remote:  # proof of where the timing ran (the board's own pid/host/workdir)
        result.details["remote"] = stats.remote
    return result
