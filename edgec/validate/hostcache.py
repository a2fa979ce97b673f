"""This machine's host profile, measured on first use and cached per CPU fingerprint.

Emulate mode divides by the host's roofline, so a host profile measured on another machine puts its error into
every device number (a profile tuned on one EPYC was 159% off on a Xeon). The first build that needs the host's
numbers runs `hostcal.detect()` (a few seconds) and caches the result under a key made of what decides kernel
speed: CPU model, the SIMD flags that select kernels (AVX2 / AVX-512 / VNNI / NEON dot product), core count and
the runtime versions. A different machine, or a runtime upgrade, gets its own entry. Next to the common profile,
one per runtime (`<key>.ort.yaml`, `<key>.litert.yaml`) carries the roofline coefficients fitted in that runtime
(edgec.validate.costfit).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from edgec.paths import cache_dir, exclusive, write_atomic

# flags that change which kernels ONNX Runtime / XNNPACK pick (x86 and ARM names from /proc/cpuinfo)
KERNEL_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8",
                "asimd", "asimddp", "i8mm", "sve", "fphp", "asimdhp")


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and value.strip():
            model = value.strip()
        elif key in ("flags", "features"):
            flags |= set(value.split())
    return model, flags


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("onnxruntime", "ai-edge-litert"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "none"
    return out


# bump when what hostcal measures, or how, changes: an entry measured the old way is then measured again
# 1: wall clock at every core; 2: one core, CPU time, compute peaks x cores; 3: + per-runtime fit (costfit); 4: + gemm_full_m fitted (a few-output-channel conv probe);
# 5: + strided_conv_gbps (a stride-2 conv probe against the same GEMM at stride 1)
METHOD = 5


def fingerprint() -> dict:
    """What decides this machine's kernel speeds (and nothing that changes from run to run), and the method."""
    model, flags = _cpuinfo()
    return {"cpu": model, "arch": platform.machine(), "cores": os.cpu_count() or 1,
            "flags": sorted(f for f in KERNEL_FLAGS if f in flags), "runtimes": _versions(), "method": METHOD}


def key_of(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class HostEntry:
    """One cached calibration: the host profile YAML and what it was measured on."""

    profile_path: Path
    fingerprint: dict
    measured_at: str  # UTC, ISO 8601
    fresh: bool = False  # measured by this call

    def profile_for(self, runtime: str | None) -> Path:
        """The host profile whose estimate block was fitted in `runtime` (costfit.RUNTIMES); else the common
        one (hostcal's micro-benchmarks in ONNX Runtime, no per-runtime fit)."""
        fitted = self.profile_path.with_suffix(f".{runtime}.yaml")
        return fitted if runtime and fitted.exists() else self.profile_path

    def describe(self) -> str:
        fp = self.fingerprint
        flags = "/".join(f for f in fp["flags"] if f.startswith(("avx512", "avx_vnni", "asimddp", "i8mm", "avx2"))) or "-"
        return (f"calibrated on this machine ({fp['cpu']}, {fp['cores']} cores, {flags}) at {self.measured_at}"
                f"{' (just now)' if self.fresh else ''}; `edgec profiles detect --force` re-measures")


def _dir() -> Path:
    return cache_dir() / "host"


def _load(key: str) -> HostEntry | None:
    meta = _dir() / f"{key}.json"
    prof = _dir() / f"{key}.yaml"
    from edgec.validate.costfit import RUNTIMES

    if not (meta.exists() and prof.exists() and all(prof.with_suffix(f".{rt}.yaml").exists() for rt in RUNTIMES)):
        return None
    try:
        data = json.loads(meta.read_text())
        return HostEntry(prof, data["fingerprint"], data["measured_at"])
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry is measured again


def calibrated(force: bool = False, threads: int | None = None) -> HostEntry:
    """The cached calibration for this machine's fingerprint, measured now when missing (or `force`)."""
    from edgec.validate import costfit, hostcal

    fp = fingerprint()
    key = key_of(fp)
    # two builds starting together measure once, not against each other
    with exclusive(_dir() / "calibrate.lock"):
        entry = None if force else _load(key)
        if entry is not None:
            return entry
        threads = threads or fp["cores"]
        data = hostcal.detect(threads)
        data["description"] = f"This machine ({fp['cpu']}, {fp['cores']} cores), calibrated by edgec on first use"
        stamp = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
        prof = _dir() / f"{key}.yaml"
        fitted = costfit.fitted_estimates(data, fp["flags"])
        for rt, spec in fitted.items():  # per runtime: the same hardware, that runtime's fitted coefficients
            one = dict(data, hardware=dict(data["hardware"], estimate=spec),
                       description=f"{data['description']}; estimate coefficients fitted in {rt} (costfit)")
            write_atomic(prof.with_suffix(f".{rt}.yaml"), hostcal.to_yaml(one))
        write_atomic(prof, hostcal.to_yaml(data))
        write_atomic(_dir() / f"{key}.json", json.dumps(
            {"fingerprint": fp, "measured_at": stamp}, indent=1, sort_keys=True))
        return HostEntry(prof, fp, stamp, fresh=True)
