"""Attached hardware for latency mode `device`: pick the runner from a device URI.

    ssh://user@host[:port][?python=/usr/bin/python3]   a Linux board with python3 + onnxruntime / ai-edge-litert
    adb:SERIAL[?benchmark=/path/to/benchmark_model]     an Android phone, LiteRT's benchmark_model binary
    coreml                                              this Mac's CoreML runtime (macOS only)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgec.errors import UsageError


@dataclass
class DeviceStats:
    runtime: str
    threads: int
    method: str
    times_ms: list[float] = field(default_factory=list)  # per-run times when the device reports them
    # aggregates, for tools that only print those
    median_ms: float | None = None
    p90_ms: float | None = None
    min_ms: float | None = None
    runs: int = 0
    remote: dict = field(default_factory=dict)  # what the device says about itself (ssh: pid, host, workdir)


def device_for(uri: str | None, fmt: str):
    if not uri:
        raise UsageError("Latency mode 'device' needs a device: `--device ssh://user@host[:port]`, "
                         "`--device adb:SERIAL` or `--device coreml`, or `validate: {latency: {device: ...}}`.")
    if uri.startswith("ssh://"):
        from edgec.validate.devices.ssh import SshDevice

        return SshDevice.from_uri(uri)
    if uri.startswith("adb:"):
        from edgec.validate.devices.adb import AdbDevice

        if fmt != "tflite":
            raise UsageError(f"--device {uri}: adb runs LiteRT's benchmark_model, which takes .tflite artifacts, "
                             f"not '{fmt}'. Use the android target.")
        return AdbDevice.from_uri(uri)
    if uri in ("coreml", "mac", "coreml:local"):
        from edgec.validate.devices.coreml_mac import CoreMLMacDevice

        if fmt != "coreml":
            raise UsageError(f"--device {uri} runs CoreML packages, not '{fmt}' artifacts.")
        return CoreMLMacDevice()
    raise UsageError(f"Unknown device '{uri}': use ssh://user@host[:port], adb:SERIAL or coreml.")
