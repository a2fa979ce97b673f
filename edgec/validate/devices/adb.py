"""Latency on an Android phone: push the .tflite and LiteRT's `benchmark_model` binary (the user gives its path),
run it with the profile's threads and delegate, parse what it prints.

benchmark_model prints aggregates, not per-run times:
    count=50 first=14850 curr=13315 min=13105 max=15765 avg=13520.2 std=470      (microseconds)
so the result's median is its avg, p90 is avg + 1.2816 std (normal approximation) and min is its min; the
report says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs

from edgec.errors import DeviceError, UsageError
from edgec.validate.devices.base import DeviceStats

REMOTE_DIR = "/data/local/tmp/edgec"
_STATS = re.compile(r"count=(\d+)\s+first=(\d+)\s+curr=(\d+)\s+min=(\d+)\s+max=(\d+)\s+avg=([\d.e+]+)\s+std=(\d+)")
_DELEGATE_FLAGS = {"xnnpack": ["--use_xnnpack=true"], "gpu": ["--use_gpu=true"], "nnapi": ["--use_nnapi=true"],
                   None: ["--use_xnnpack=false"], "cpu": ["--use_xnnpack=false"]}


class AdbDevice:
    def __init__(self, serial: str, benchmark_binary: str | None = None, runner=None, timeout: float = 900.0):
        self.serial = serial
        self.benchmark_binary = benchmark_binary or os.environ.get("EDGEC_BENCHMARK_MODEL")
        self._runner = runner or self._subprocess  # tests pass a recorder: no phone exists in CI
        self.timeout = timeout

    @classmethod
    def from_uri(cls, uri: str) -> "AdbDevice":
        rest = uri[len("adb:"):]
        serial, _, query = rest.partition("?")
        if not serial:
            raise UsageError(f"Device '{uri}': give the phone's serial (`adb devices`), e.g. adb:R5CT1234567.")
        binary = parse_qs(query).get("benchmark", [None])[0]
        return cls(serial, binary)

    def describe(self) -> str:
        return f"adb:{self.serial}"

    def _adb(self, *args: str) -> list[str]:
        return ["adb", "-s", self.serial, *args]

    def commands(self, artifact_path: Path, threads: int, delegate: str | None, runs: int, warmup: int,
                 max_seconds: float | None = None) -> list[list[str]]:
        """Every command, in order, that one benchmark issues."""
        if delegate not in _DELEGATE_FLAGS:
            raise UsageError(f"Delegate '{delegate}' is not one benchmark_model can use: "
                             f"{', '.join(k for k in _DELEGATE_FLAGS if k)}.")
        model = f"{REMOTE_DIR}/{artifact_path.name}"
        binary = f"{REMOTE_DIR}/benchmark_model"
        bench = [binary, f"--graph={model}", f"--num_threads={threads}", f"--num_runs={runs}",
                 f"--warmup_runs={warmup}", "--min_secs=0", "--warmup_min_secs=0", *_DELEGATE_FLAGS[delegate]]
        if max_seconds:
            bench.append(f"--max_secs={max_seconds:g}")
        return [
            self._adb("shell", "mkdir", "-p", REMOTE_DIR),
            self._adb("push", str(self.benchmark_binary), binary),
            self._adb("shell", "chmod", "755", binary),
            self._adb("push", str(artifact_path), model),
            self._adb("shell", *bench),
            self._adb("shell", "rm", "-f", model),
        ]

    def _subprocess(self, cmd: list[str]) -> str:
        if shutil.which("adb") is None:
            raise DeviceError("`adb` is not installed (Android platform-tools); it is needed for adb: devices.")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.describe()}: `{' '.join(cmd[3:5])}` took longer than {self.timeout:g} s.") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise DeviceError(f"{self.describe()}: `{' '.join(cmd[3:5])}` failed (exit {proc.returncode}): "
                              + " | ".join(tail))
        return proc.stdout + proc.stderr  # benchmark_model logs to stderr on some builds

    def benchmark(self, artifact, profile, feeds: dict) -> DeviceStats:
        path = Path(artifact.path)
        if path.suffix != ".tflite":
            raise UsageError(f"{path.name}: benchmark_model runs .tflite files.")
        if not self.benchmark_binary or not Path(self.benchmark_binary).is_file():
            raise UsageError(
                "adb devices need LiteRT's benchmark_model binary for the phone's ABI: pass "
                "`--device adb:SERIAL?benchmark=/path/to/benchmark_model` or set $EDGEC_BENCHMARK_MODEL "
                f"(got {self.benchmark_binary!r}).")
        spec = profile.validate_.latency
        threads, delegate = profile.runtime.threads, profile.runtime.delegate
        out = ""
        for cmd in self.commands(path, threads, delegate, spec.runs, spec.warmup, spec.time_budget_s):
            text = self._runner(cmd)
            if "--graph=" in " ".join(cmd):
                out = text
        return parse_benchmark_output(out, f"{self.describe()} ({delegate or 'cpu'} delegate)", threads)


def parse_benchmark_output(text: str, where: str, threads: int) -> DeviceStats:
    """The timed block is the last `count=... avg=... std=...` line (the first one is the warm-up)."""
    blocks = _STATS.findall(text)
    if not blocks:
        raise DeviceError(f"{where}: benchmark_model printed no timing line: {text.strip()[-300:]!r}")
    count, _first, _curr, low, _high, avg, std = blocks[-1]
    avg_ms, std_ms = float(avg) / 1000.0, float(std) / 1000.0
    peak = re.search(r"Peak memory footprint \(MB\): init=([\d.]+) overall=([\d.]+)", text)
    method = (f"LiteRT benchmark_model on {where}: {count} runs; median shown = its avg, p90 = avg + 1.28 std "
              f"(it prints no percentiles)")
    if peak:
        method += f"; peak memory {float(peak.group(2)):.1f} MB"
    return DeviceStats(runtime=f"LiteRT benchmark_model on {where}", threads=threads, method=method,
                       median_ms=avg_ms, p90_ms=avg_ms + 1.2816 * std_ms, min_ms=float(low) / 1000.0,
                       runs=int(count))
