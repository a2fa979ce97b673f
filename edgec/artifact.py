"""The small dataclasses the pipeline stages pass to each other (no dicts between stages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgec.config.models import Profile, Target


@dataclass(frozen=True)
class LowerContext:
    """What a backend needs to lower one graph for one target/profile."""

    target: Target
    profile: Profile
    model_name: str  # stem used for file names, e.g. "squeezenet"
    staging_dir: Path  # private temp folder inside the output folder; files here are renamed into place
    source_sha256: str = ""
    precision: str = "fp32"  # fp32 | fp16 | int8 (decided by the quantize stage)


@dataclass
class Artifact:
    """One built artifact. `path` is the main file (or folder, for .mlpackage) in the staging dir."""

    target: str
    profile: str
    format: str
    path: Path
    precision: str
    extra_files: list[Path] = field(default_factory=list)  # written next to the artifact
    notes: list[str] = field(default_factory=list)  # one line each, shown in the report
    details: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable backend facts


@dataclass
class OutputMetrics:
    max_abs: float
    cosine: float
    # the difference of two inputs' outputs, compared between reference and artifact: catches
    # layout/padding bugs that random deep nets hide (their outputs all point the same way)
    delta_cosine: float | None = None
    finite: bool = True
    # classifier-shaped outputs of reduced-precision builds: share of samples whose reference top-1 class is the
    # artifact's top-1 / among its top-5
    top1: float | None = None
    top5: float | None = None


@dataclass
class NumericsResult:
    ran_on: str  # which runtime produced the artifact's outputs
    outputs: dict[str, OutputMetrics]
    passed: bool
    thresholds: dict[str, float | None] = field(default_factory=dict)
    samples: int = 1
    message: str = ""
    data: str = ""  # what the inputs were, e.g. held-out calibration files (quantized builds)


@dataclass
class LatencyResult:
    mode: str  # host | emulate | estimate | device | off
    median_ms: float | None
    p90_ms: float | None
    runs: int
    threads: int
    budget_ms: float | None
    passed: bool | None  # None when there was no budget
    min_ms: float | None = None
    spread: float | None = None  # (p90 - min) / median
    noisy: bool = False
    runtime: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass
class ArtifactResult:
    artifact: Artifact
    final_path: Path  # where it lives in the output folder
    sha256: str
    bytes: int
    numerics: NumericsResult | None = None
    latency: LatencyResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # stage timings
    numerics_arm: NumericsResult | None = None  # --emulator: the real aarch64 runtime under QEMU, same inputs

    @property
    def passed(self) -> bool:
        n = self.numerics is None or self.numerics.passed
        if self.numerics_arm is not None:
            # int8: the x86 kernels are not the device's (VNNI/AVX2 saturate where ARM's SDOT kernels do not),
            # so the ARM-kernel verdict alone gates; float artifacts must pass on both
            arm = self.numerics_arm.passed
            n = arm if self.artifact.precision.startswith("int8") else (n and arm)
        lat = self.latency is None or self.latency.passed is not False
        return n and lat


@dataclass
class ModelInfo:
    path: Path
    sha256: str
    opset: int
    ir_version: int
    producer: str
    inputs: list[dict[str, Any]]  # {"name","dtype","shape"} shape entries int or str (dynamic)
    outputs: list[dict[str, Any]]
    op_histogram: dict[str, int]
    bytes: int
    nodes: int
    parameters: int
    renamed: dict[str, str] = field(default_factory=dict)  # names that were not UTF-8 -> the names edgec used


@dataclass
class BuildResult:
    model: ModelInfo
    out_dir: Path
    artifacts: list[ArtifactResult]
    manifest_path: Path | None = None
    report_path: Path | None = None
    cross_target: dict | None = None  # quantized builds: the same held-out inputs through every target

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.artifacts)
