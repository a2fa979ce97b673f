"""Latency of a .mlpackage on this Mac's real CoreML runtime (coremltools predict) with the profile's compute
units. Only macOS has CoreML; elsewhere this is a DeviceError that points to estimate mode."""

from __future__ import annotations

import sys
from pathlib import Path

from edgec.errors import DeviceError
from edgec.validate.devices.base import DeviceStats


class CoreMLMacDevice:
    def describe(self) -> str:
        return "coreml (this Mac)"

    def benchmark(self, artifact, profile, feeds: dict) -> DeviceStats:
        if sys.platform != "darwin":
            raise DeviceError(f"--device coreml needs macOS (this is {sys.platform}); use `--latency estimate` "
                              f"for CoreML elsewhere.")
        from edgec.runtimes.coreml import CoreMLRunner, _MacPredict, name_map_of
        from edgec.validate.timing import time_runs

        units = profile.runtime.compute_units or "all"
        path = Path(artifact.path)
        runner = CoreMLRunner(path, name_map_of(path), units, inner=_MacPredict(path, units))
        spec = profile.validate_.latency
        times = time_runs(lambda: runner.run(feeds), spec.runs, spec.warmup, spec.time_budget_s)
        return DeviceStats(runtime=f"{runner.name}, compute units {units}", threads=profile.runtime.threads,
                           method=f"coremltools predict on this Mac, compute units {units}, {len(times)} runs "
                                  f"(the Mac's chip, not the phone's)", times_ms=times, runs=len(times))
