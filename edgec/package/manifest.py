"""manifest.json: the contract every target fills in (hashes, sizes, metrics, versions)."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from edgec import __version__
from edgec.artifact import ArtifactResult, BuildResult
from edgec.package.files import write_text_atomic

VERSIONED = ("onnx", "onnxruntime", "onnxsim", "numpy", "coremltools", "ai-edge-litert", "flatbuffers")


def dependency_versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _finite(x):
    """JSON has no inf/NaN: write them as strings so every JSON reader can load the manifest."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return str(x)
    return x


def _artifact_entry(a: ArtifactResult, out_dir: Path) -> dict:
    entry = {
        "target": a.artifact.target,
        "profile": a.artifact.profile,
        "format": a.artifact.format,
        "path": a.final_path.relative_to(out_dir).as_posix(),
        "sha256": a.sha256,
        "bytes": a.bytes,
        "precision": a.artifact.precision,
        "extra_files": [p.name for p in a.artifact.extra_files],
        "numerics": None,
        "latency": None,
        "passed": a.passed,
        "notes": a.artifact.notes,
        "details": a.artifact.details,
        "seconds": {k: round(v, 3) for k, v in a.seconds.items()},
    }
    if a.numerics is not None:
        n = a.numerics
        entry["numerics"] = {
            "ran_on": n.ran_on,
            "samples": n.samples,
            "thresholds": n.thresholds,
            "outputs": {
                name: {k: _finite(v) for k, v in asdict(m).items()} for name, m in n.outputs.items()
            },
            "passed": n.passed,
            "message": n.message,
        }
    if a.latency is not None:
        entry["latency"] = {k: _finite(v) for k, v in asdict(a.latency).items()}
    return entry


def manifest_dict(result: BuildResult, failures: list[tuple[str, str, Exception]] = ()) -> dict:
    m = result.model
    return {
        "edgec_version": __version__,
        "model": {
            "path": str(m.path),
            "sha256": m.sha256,
            "opset": m.opset,
            "ir_version": m.ir_version,
            "inputs": m.inputs,
            "outputs": m.outputs,
            "bytes": m.bytes,
        },
        "versions": dependency_versions(),
        "passed": result.passed and not failures,
        "artifacts": [_artifact_entry(a, result.out_dir) for a in result.artifacts],
        # targets that produced no artifact, with the reason
        "errors": [
            {"target": t, "profile": p, "kind": getattr(e, "kind", "error"), "message": str(e)}
            for t, p, e in failures
        ],
    }


def write_manifest(result: BuildResult, failures: list[tuple[str, str, Exception]] = ()) -> Path:
    text = json.dumps(manifest_dict(result, failures), indent=2, sort_keys=False, default=str) + "\n"
    return write_text_atomic(result.out_dir / "manifest.json", text)
