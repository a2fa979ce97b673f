"""The verbs of edgec as plain Python functions; the CLI only parses arguments and prints.

Data goes one way: profile + model -> graph (prepared once per profile) -> each backend's Artifact ->
validation metrics -> files in the output folder.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from edgec.artifact import ArtifactResult, BuildResult, LowerContext, ModelInfo, NumericsResult
from edgec.config.models import Profile, Target
from edgec.errors import EdgecError, UnsupportedOp
from edgec.graph.info import model_info
from edgec.graph.load import load_model
from edgec.graph.prepare import PreparedGraph, prepare, profile_shapes, quantize_key
from edgec.graph.shapes import parse_input_shape_flags
from edgec.hashing import sha256_path, size_of
from edgec.lower.backend import get_backend
from edgec.package.files import ensure_out_dir, place, staging_dir
from edgec.package.manifest import write_manifest
from edgec.package.report import write_report
from edgec.plan import plan_builds
from edgec.validate import latency as latency_mod
from edgec.validate.inputs import input_specs, random_inputs
from edgec.validate.numerics import compare
from edgec.validate.runners.host_ort import OrtRunner


@dataclass
class BuildOptions:
    target: str | None = None
    profile: str | None = None
    out_dir: Path = Path("dist")
    input_shapes: list[str] = field(default_factory=list)  # NAME=D0,D1,... flags
    validate: bool = True
    model_name: str | None = None  # file stem for artifacts; defaults to the model file's stem
    latency: str | None = None  # overrides validate.latency.mode: host|emulate|estimate|device|off
    device: str | None = None  # overrides validate.latency.device: ssh://user@host[:port], adb:SERIAL, coreml
    budget_ms: float | None = None  # overrides validate.latency.budget_ms
    quantize: str | None = None  # overrides every profile's quantize.mode: none|fp16|int8|int8-dynamic|int8-weights
    calibration: str | None = None  # overrides quantize.calibration.source: a folder, or "random"


@dataclass
class TargetFailure:
    target: str
    profile: str
    error: EdgecError


@dataclass
class BuildOutcome:
    result: BuildResult
    failures: list[TargetFailure]

    @property
    def ok(self) -> bool:
        return not self.failures and self.result.passed


def _stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "model"


def _threads(profile: Profile) -> int:
    return max(1, min(profile.runtime.threads, os.cpu_count() or 1))


def _with_latency(profile: Profile, options: BuildOptions) -> Profile:
    """--latency / --device / --budget-ms override the profile's validate.latency (cache keys see them too)."""
    update = {k: v for k, v in (("mode", options.latency), ("device", options.device),
                                ("budget_ms", options.budget_ms)) if v is not None}
    if not update:
        return profile
    from edgec.config.models import LatencySpec

    lat = profile.validate_.latency
    try:
        lat = LatencySpec.model_validate({**lat.model_dump(), **update})
    except ValueError as e:
        from edgec.errors import UsageError

        raise UsageError(f"--latency/--device/--budget-ms: {e.errors()[0]['msg'] if hasattr(e, 'errors') else e}") from None
    return profile.model_copy(update={"validate_": profile.validate_.model_copy(update={"latency": lat})})


QUANT_MODES = ("none", "fp16", "int8", "int8-dynamic", "int8-weights")


def _with_quantize(profile: Profile, options: BuildOptions) -> Profile:
    """--quantize / --calibration override the profile's quantize settings (so cache keys see them too)."""
    if options.quantize is None and options.calibration is None:
        return profile
    if options.quantize is not None and options.quantize not in QUANT_MODES:
        from edgec.errors import UsageError

        raise UsageError(f"--quantize {options.quantize}: choose one of {', '.join(QUANT_MODES)}.")
    q = profile.quantize
    update: dict = {}
    if options.quantize is not None:
        update["mode"] = options.quantize
    if options.calibration is not None:
        update["calibration"] = q.calibration.model_copy(update={"source": options.calibration})
    return profile.model_copy(update={"quantize": q.model_copy(update=update)})


class _Reference:
    """ONNX Runtime on the original model, on seeded inputs; computed once per input shape set."""

    def __init__(self, original: onnx.ModelProto):
        self.original = original
        self._cache: dict[tuple, tuple[list[dict], list[dict]]] = {}

    def get(self, prepared: PreparedGraph, profile: Profile) -> tuple[list[dict], list[dict]]:
        spec = profile.validate_.numerics
        key = (tuple((k, tuple(v)) for k, v in sorted(prepared.shapes.items())), spec.seed, spec.samples)
        if key not in self._cache:
            feeds = random_inputs(input_specs(prepared.model), seed=spec.seed, samples=max(spec.samples, 2))
            runner = OrtRunner(self.original, threads=_threads(profile))
            self._cache[key] = (feeds, [runner.run(f) for f in feeds])
        return self._cache[key]


def build(model_path: Path | str, options: BuildOptions) -> BuildOutcome:
    model_path = Path(model_path)
    pairs = [(t, _with_latency(_with_quantize(p, options), options))
             for t, p in plan_builds(options.target, options.profile)]
    cli_shapes = parse_input_shape_flags(options.input_shapes)
    model = load_model(model_path)
    info = model_info(model, model_path)
    out_dir = ensure_out_dir(Path(options.out_dir))
    name = options.model_name or _stem(model_path)

    prepared_by_shapes: dict[tuple, PreparedGraph] = {}
    reference = _Reference(model)
    results: list[ArtifactResult] = []
    failures: list[TargetFailure] = []
    single = len(pairs) == 1
    for target, profile in pairs:
        try:
            shapes = profile_shapes(profile, cli_shapes)
            key = (tuple((k, tuple(v)) for k, v in sorted(shapes.items())), quantize_key(profile, target.format))
            t0 = time.perf_counter()
            if key not in prepared_by_shapes:
                prepared_by_shapes[key] = prepare(model, shapes, str(model_path), profile, target.format)
            prepared = prepared_by_shapes[key]
            prep_s = time.perf_counter() - t0
            result = _build_one(prepared, target, profile, info, name, out_dir, reference, options)
            result.seconds = {"prepare": prep_s, **result.seconds}
            results.append(result)
        except EdgecError as e:
            if single:
                raise
            failures.append(TargetFailure(target.name, profile.name, e))

    build_result = BuildResult(model=info, out_dir=out_dir, artifacts=results)
    build_result.manifest_path = write_manifest(build_result, [(f.target, f.profile, f.error) for f in failures])
    build_result.report_path = write_report(build_result)
    return BuildOutcome(build_result, failures)


def _build_one(
    prepared: PreparedGraph,
    target: Target,
    profile: Profile,
    info: ModelInfo,
    name: str,
    out_dir: Path,
    reference: _Reference,
    options: BuildOptions,
) -> ArtifactResult:
    backend = get_backend(target.format)
    problems = backend.unsupported(prepared.model)
    if problems:
        raise UnsupportedOp(target.name, problems)
    stage = staging_dir(out_dir)
    try:
        ctx = LowerContext(
            target=target, profile=profile, model_name=name, staging_dir=stage,
            source_sha256=info.sha256, precision=prepared.precision,
        )
        t0 = time.perf_counter()
        artifact = backend.lower(prepared.model, ctx)
        lower_s = time.perf_counter() - t0
        artifact.notes = prepared.notes + artifact.notes
        numerics = latency = None
        t0 = time.perf_counter()
        if options.validate:
            numerics, latency = _validate(backend, artifact, prepared, profile, reference)
        validate_s = time.perf_counter() - t0
        final = out_dir / artifact.path.name
        for extra in artifact.extra_files:
            place(extra, out_dir / extra.name)
        place(artifact.path, final)
        artifact.extra_files = [out_dir / e.name for e in artifact.extra_files]
        return ArtifactResult(
            artifact=artifact, final_path=final, sha256=sha256_path(final), bytes=size_of(final),
            numerics=numerics, latency=latency, seconds={"lower": lower_s, "validate": validate_s},
        )
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _validate(backend, artifact, prepared: PreparedGraph, profile: Profile, reference: _Reference):
    feeds, ref_outputs = reference.get(prepared, profile)
    threads = _threads(profile)
    runner = backend.runner(artifact, threads)
    actual = [runner.run(f) for f in feeds]
    spec = profile.validate_.numerics
    if prepared.quant is not None:  # reduced precision: held-out samples, per-precision thresholds, top-k
        from edgec.quantize.accuracy import evaluate

        artifact.details["quantize"] = prepared.quant.summary()
        numerics = evaluate(prepared.quant, reference.original, runner, spec, threads)
    else:
        numerics: NumericsResult = compare(ref_outputs, actual, runner.name, spec.min_cosine, spec.max_abs)
    latency = latency_mod.measure_latency(runner, artifact, prepared.model, profile, feeds[0], threads)
    return numerics, latency


def check(model_path: Path | str) -> tuple[ModelInfo, dict[str, list[tuple[str, str, str]]]]:
    """Model facts and, per built-in target, the nodes that target cannot take (empty list = all supported)."""
    from edgec.config.loader import all_targets

    model_path = Path(model_path)
    model = load_model(model_path)
    info = model_info(model, model_path)
    support: dict[str, list[tuple[str, str, str]]] = {}
    for target in all_targets():
        try:
            support[target.name] = get_backend(target.format).unsupported(model)
        except EdgecError as e:
            support[target.name] = [("*", "*", str(e))]
    return info, support


def validate_artifact(
    model_path: Path | str, artifact_path: Path | str, profile: str | None = None, input_shapes: list[str] = ()
) -> ArtifactResult:
    """Check an artifact built earlier (or by another tool) against its ONNX model: numerics and latency."""
    from edgec.artifact import Artifact
    from edgec.config.loader import all_targets, load_profile
    from edgec.errors import UsageError
    from edgec.graph.shapes import fix_input_shapes

    model_path, artifact_path = Path(model_path), Path(artifact_path)
    if not artifact_path.exists():
        raise UsageError(f"{artifact_path}: no such artifact. Give the path of a .ort, .tflite or .mlpackage file.")
    target = next((t for t in all_targets() if artifact_path.name.endswith(t.extension)), None)
    if target is None:
        known = ", ".join(t.extension for t in all_targets())
        raise UsageError(f"{artifact_path}: unknown artifact kind; edgec validates {known} files.")
    prof = load_profile(profile or target.default_profile)
    model = load_model(model_path)
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    shapes = fix_input_shapes(fixed, profile_shapes(prof, parse_input_shape_flags(list(input_shapes))), str(model_path))
    prepared = PreparedGraph(model=fixed, shapes=shapes)
    artifact = Artifact(target=target.name, profile=prof.name, format=target.format, path=artifact_path,
                        precision="unknown")
    t0 = time.perf_counter()
    numerics, latency = _validate(get_backend(target.format), artifact, prepared, prof, _Reference(model))
    return ArtifactResult(
        artifact=artifact, final_path=artifact_path, sha256=sha256_path(artifact_path), bytes=size_of(artifact_path),
        numerics=numerics, latency=latency, seconds={"validate": time.perf_counter() - t0},
    )
