"""Timing protocol: warm-up, N runs or a time budget, median / p90 / min and spread, against a budget."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from edgec.artifact import LatencyResult

NOISY_SPREAD = 0.5  # (p90 - min) / median above this: the machine was busy, say so


def time_runs(run: Callable[[], object], runs: int, warmup: int, max_seconds: float | None = None,
              min_runs: int = 3, clock: Callable[[], float] | None = None) -> list[float]:
    """Times of `runs` calls in ms after `warmup` untimed ones; stops early once `max_seconds` of timed runs
    have passed (but never before `min_runs`). `clock`: wall clock by default; time.process_time gives the CPU
    time of one-thread runs, which other work on the machine does not stretch."""
    clock = clock or time.perf_counter
    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = clock()
        run()
        times.append((clock() - t0) * 1000.0)
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
