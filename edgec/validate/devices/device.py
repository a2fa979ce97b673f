"""Attached hardware for latency mode `device`: pick the runner from a device URI.

    ssh://user@host[:port][?python=/usr/bin/python3]   a Linux board with python3 + onnxruntime / ai-edge-litert
    adb:SERIAL[?benchmark=/path/to/benchmark_model]     an Android phone, LiteRT's benchmark_model binary
    coreml                                              this Mac's CoreML runtime (macOS only)
"""

from __future__ import annotations

from edgec.errors import UsageError
from edgec.validate.devices.base import DeviceStats  # noqa: F401  (the runners' shared result type)


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
